"""The scikit-learn backend: Barnes-Hut t-SNE, for parity with mmpretrain."""
import numpy as np

from tsneviz.errors import UserError
from tsneviz.registry import TSNE_BACKENDS

from .base import SKLEARN_ONLY, TSNE


@TSNE_BACKENDS.register_module(name='sklearn')
class SklearnTSNE(TSNE):
    """Barnes-Hut t-SNE from scikit-learn, for parity with mmpretrain.

    With ``init='random'``, ``learning_rate=200.0``, ``n_iter=1000`` and
    ``pca_dims=None`` it is the computation mmpretrain's tool asks for
    (``n_iter`` reaches scikit-learn as ``max_iter``, the name it has had
    since 1.5). It searches its own neighbours (a shared graph is not
    taken), and its map takes new points through openTSNE
    (:meth:`TSNE.transform`).

    Examples:
        >>> from tsneviz.registry import REDUCERS
        >>> reducer = REDUCERS.build(dict(type='tsne', backend='sklearn',
        ...                                 n_iter=250))
        >>> reducer.fit_transform(np.random.rand(200, 16)).shape
        (200, 2)
    """

    name = 'SklearnTSNE'
    backend = 'sklearn'
    own_constraints = SKLEARN_ONLY
    defaults = dict(n_components=2, perplexity=30.0, early_exaggeration=12.0,
                    learning_rate='auto', n_iter=1000,
                    n_iter_without_progress=300, init='pca',
                    metric='euclidean', seed=0, n_jobs=-1, pca_dims=None,
                    method='barnes_hut', angle=0.5)

    def __init__(self, **params):
        super().__init__(**params)
        if self.params['init'] == 'spectral':
            raise UserError("SklearnTSNE: init='spectral' is only available "
                            "with the openTSNE backend; use 'pca' or 'random'")

    def _fit(self, X, graph, progress):
        from sklearn.manifold import TSNE as ScikitTSNE

        p = self.params
        X = self.reduce_dims(X)
        tsne = ScikitTSNE(
            n_components=p['n_components'], perplexity=self.perplexity_,
            early_exaggeration=p['early_exaggeration'],
            learning_rate=p['learning_rate'], max_iter=p['n_iter'],
            n_iter_without_progress=p['n_iter_without_progress'],
            init=p['init'], metric=p['metric'], method=p['method'],
            angle=p['angle'], n_jobs=p['n_jobs'], random_state=p['seed'])
        # scikit-learn has no callbacks: the bar can only show start and end.
        if progress is not None:
            progress(0, p['n_iter'], None)
        coords = tsne.fit_transform(X).astype(np.float32)
        self.kl_divergence_ = float(tsne.kl_divergence_)
        self.n_iter_ = int(tsne.n_iter_)
        if progress is not None:
            progress(p['n_iter'], p['n_iter'], self.kl_divergence_)
        return coords
