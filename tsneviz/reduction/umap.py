"""UMAP layout (umap-learn, an optional extra), imported only when used."""
import numbers
import os
import os.path as osp

import numpy as np

from tsneviz.errors import UserError
from tsneviz.params import Interval, Options
from tsneviz.registry import REDUCERS

from .base import BaseReducer


def _numba_cache_dir() -> str:
    """Where numba keeps UMAP's compiled functions between processes.

    umap-learn compiles its kernels with numba on first use: about 60 s in a
    fresh process on 2 cores. Its functions are cached on disk when numba
    may write; a user cache directory makes that work even where
    site-packages is read-only. An explicit ``NUMBA_CACHE_DIR`` wins.
    """
    base = os.environ.get('XDG_CACHE_HOME') or osp.join(
        osp.expanduser('~'), '.cache')
    return osp.join(base, 'tsneviz', 'numba')


def import_umap():
    """Import umap-learn with a disk cache for numba, or say how to get it."""
    os.environ.setdefault('NUMBA_CACHE_DIR', _numba_cache_dir())
    try:
        import umap
    except ImportError as err:
        raise UserError('--method umap needs umap-learn: pip install '
                        'umap-learn (or pip install tsneviz[optional])'
                        ) from err
    return umap


@REDUCERS.register_module(name='umap')
class UMAPReducer(BaseReducer):
    """UMAP (McInnes et al., 2018) through umap-learn.

    Defaults are umap-learn's (15 neighbours, ``min_dist=0.1``), with PCA to
    50 dimensions first as for t-SNE, and a fixed seed so that runs repeat.
    It searches its own neighbours, and its map takes no new points
    (:meth:`transform`).

    Examples:
        >>> reducer = REDUCERS.build(dict(type='umap', n_neighbors=10))
        >>> reducer.fit_transform(np.random.rand(300, 16)).shape
        (300, 2)
    """

    name = 'UMAP'
    constraints = {
        'n_components': [Interval(numbers.Integral, 2, 3)],
        'n_neighbors': [Interval(numbers.Integral, 2)],
        'min_dist': [Interval(numbers.Real, 0)],
        'metric': [Options(['euclidean', 'cosine'])],
        'n_epochs': [None, Interval(numbers.Integral, 1)],
        'seed': [Interval(numbers.Integral, 0)],
        'n_jobs': [Interval(numbers.Integral, -1)],
        'pca_dims': [None, Interval(numbers.Integral, 0)],
    }
    # The flags of its own (the shared ones are described by t-SNE).
    descriptions = {'n_neighbors': 'UMAP neighbourhood size.',
                    'min_dist': 'UMAP minimum distance.'}
    # n_jobs is accepted for a common CLI, but a seeded UMAP runs on one
    # thread (see fit_transform).
    defaults = dict(n_components=2, n_neighbors=15, min_dist=0.1,
                    metric='euclidean', n_epochs=None, seed=0, n_jobs=1,
                    pca_dims=50)

    def check_n_samples(self, n_samples):
        if self.params['n_neighbors'] >= n_samples:
            raise UserError(
                f'n_neighbors {self.params["n_neighbors"]} is too large for '
                f'{n_samples} samples: lower --n-neighbors below '
                f'{n_samples} or sample more with --max-num-samples')

    def n_neighbors_for(self, n_samples):
        return min(n_samples - 1, self.params['n_neighbors'])

    def describe(self):
        return f'UMAP · {self.params["n_neighbors"]} neighbours'

    def transform(self, X):
        """Refused: a run keeps no fitted UMAP model to place points with.

        Raises:
            UserError: Always, in one line.
        """
        raise UserError('a UMAP map does not keep its fitted UMAP model, so '
                        'new points cannot be added without moving it; '
                        're-run with --method tsne (or pca) and place onto '
                        'that run')

    def fit_transform(self, X, graph=None, progress=None):
        umap = import_umap()
        p = self.params
        X = self.reduce_dims(X)
        if progress is not None:
            progress(0, 1, None)
        # A fixed random_state makes umap-learn single-threaded (it warns
        # and overrides n_jobs); that is the price of runs that repeat,
        # which a run directory promises, so ask for one thread outright.
        model = umap.UMAP(n_components=p['n_components'],
                          n_neighbors=p['n_neighbors'],
                          min_dist=p['min_dist'], metric=p['metric'],
                          n_epochs=p['n_epochs'], random_state=p['seed'],
                          n_jobs=1)
        self.embedding_ = model.fit_transform(X).astype(np.float32)
        if progress is not None:
            progress(1, 1, None)
        return self.embedding_
