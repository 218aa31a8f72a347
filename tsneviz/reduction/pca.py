"""PCA layout: the linear baseline next to t-SNE and UMAP."""
import numbers

import numpy as np

from tsneviz.errors import UserError
from tsneviz.params import Interval
from tsneviz.registry import REDUCERS

from .base import BaseReducer


@REDUCERS.register_module(name='pca')
class PCAReducer(BaseReducer):
    """Principal components (scikit-learn), as 2-D or 3-D coordinates.

    Useful as the honest baseline: what is separated here is separated
    linearly; t-SNE and UMAP can only add local structure on top. New
    points are placed by the fitted projection itself (:meth:`transform`):
    exactly where a fit with them would have put them.

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
    placement = "PCA refitted on the run's features (exact)"

    @classmethod
    def from_map(cls, params, X, embedding):
        """The PCA of a map made earlier: refitted on its features.

        The same fit gives the map's coordinates back; where it does not,
        the features or the map changed since, and placing on it would be
        wrong.
        """
        reducer = cls.build(**params)
        again = reducer.fit_transform(X)
        scale = float(np.abs(embedding).max()) or 1.0
        if again.shape != embedding.shape or \
                np.abs(again - embedding).max() > 1e-3 * scale:
            raise UserError('the PCA cannot be refitted to its own map '
                            '(were its features changed?); make the run '
                            'again')
        return reducer

    def check_n_samples(self, n_samples):
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

    def fit_transform(self, X, graph=None, progress=None):
        from sklearn.decomposition import PCA
        self.check_n_samples(len(X))
        self.pca_ = PCA(n_components=self.params['n_components'],
                        random_state=self.params['seed'])
        self.embedding_ = self.pca_.fit_transform(
            np.asarray(X, dtype=np.float32)).astype(np.float32)
        self.explained_variance_ratio_ = self.pca_.explained_variance_ratio_
        if progress is not None:
            progress(1, 1, None)
        return self.embedding_

    def transform(self, X):
        """The fitted projection of new rows: exact, the map unmoved."""
        if not hasattr(self, 'pca_'):
            raise UserError('PCA has no map to place points on yet; '
                            'fit_transform it, or rebuild a map with '
                            'from_map(params, features, coords)')
        return self.pca_.transform(
            np.asarray(X, dtype=np.float32)).astype(np.float32)
