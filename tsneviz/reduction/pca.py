"""PCA layout: the linear baseline next to t-SNE and UMAP."""
import numbers

import numpy as np

from tsneviz.params import Interval
from tsneviz.registry import REDUCERS

from .base import BaseReducer


@REDUCERS.register_module(name='pca')
class PCAReducer(BaseReducer):
    """Principal components (scikit-learn), as 2-D or 3-D coordinates.

    Useful as the honest baseline: what is separated here is separated
    linearly; t-SNE and UMAP can only add local structure on top.

    Examples:
        >>> reducer = REDUCERS.build(dict(type='pca'))
        >>> reducer.fit_transform(np.random.rand(100, 8)).shape
        (100, 2)
    """

    name = 'PCA'
    constraints = {
        'n_components': [Interval(numbers.Integral, 2, 3)],
        'seed': [Interval(numbers.Integral, 0)],
    }
    defaults = dict(n_components=2, seed=0)

    def check_n_samples(self, n_samples):
        from tsneviz.errors import UserError
        if n_samples <= self.params['n_components']:
            raise UserError(f'PCA to {self.params["n_components"]} '
                            f'components needs more than that many samples, '
                            f'got {n_samples}')

    def describe(self):
        return 'PCA'

    def results(self):
        if not hasattr(self, 'explained_variance_ratio_'):
            return {}
        return {'explained_variance_ratio':
                [float(v) for v in self.explained_variance_ratio_]}

    def fit_transform(self, X, progress=None):
        from sklearn.decomposition import PCA
        self.check_n_samples(len(X))
        pca = PCA(n_components=self.params['n_components'],
                  random_state=self.params['seed'])
        self.embedding_ = pca.fit_transform(
            np.asarray(X, dtype=np.float32)).astype(np.float32)
        self.explained_variance_ratio_ = pca.explained_variance_ratio_
        if progress is not None:
            progress(1, 1, None)
        return self.embedding_
