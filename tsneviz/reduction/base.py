"""What every reducer shares: validated parameters and PCA before kNN."""
from typing import Callable, Optional

import numpy as np

from tsneviz.params import validate_params

ProgressFn = Callable[[int, int, Optional[float]], None]


class BaseReducer:
    """A layout method: ``fit_transform`` (N, C) features to (N, d) coords.

    ``__init__`` only validates and stores (scikit-learn's convention);
    fitted state ends in an underscore. Subclasses declare ``name`` (for
    titles), ``constraints`` (the one declaration of what each parameter
    accepts: validation, config keys, CLI flags and the server's model are
    read from it), ``defaults`` and ``descriptions`` (the parameters that
    are command-line flags, with their help), and are registered in
    :data:`tsneviz.registry.REDUCERS` under their ``--method`` name.

    Args:
        **params: Hyper-parameters by name; unknown ones are an error that
            lists the valid ones.
    """

    name = ''
    constraints: dict = {}
    defaults: dict = {}
    descriptions: dict = {}

    @classmethod
    def declared(cls) -> dict:
        """``{parameter: (constraints, {variant: default})}`` of the method.

        The variant is the method itself; t-SNE has one per backend.
        """
        return {name: (row, {'': cls.defaults.get(name)})
                for name, row in cls.constraints.items()}

    def __init__(self, **params):
        self.ignored_ = []
        self.params = {**self.defaults, **params}
        validate_params(self.params, self.constraints, self.name)

    def check_n_samples(self, n_samples: int) -> None:
        """Raise a UserError when ``n_samples`` is too few for the method."""

    def describe(self) -> str:
        """Short text for plot titles, e.g. ``'UMAP · 15 neighbours'``."""
        return self.name

    def results(self) -> dict:
        """Fitted figures for run.json (empty before fitting)."""
        return {}

    def reduce_dims(self, X: np.ndarray) -> np.ndarray:
        """float32 copy of ``X``, PCA-reduced to ``pca_dims`` when larger.

        A neighbour search in 50 PCA dimensions keeps the neighbourhoods of
        deep features while making it several times faster (the usual
        recipe for t-SNE and UMAP, e.g. Kobak & Berens 2019).
        """
        self.check_n_samples(len(X))
        X = np.ascontiguousarray(X, dtype=np.float32)
        return pca_reduce(X, self.params.get('pca_dims'),
                          self.params.get('seed', 0))

    def fit_transform(self, X: np.ndarray,
                      progress: Optional[ProgressFn] = None) -> np.ndarray:
        """Embed ``X`` (N, C) into (N, n_components) float32 coordinates."""
        raise NotImplementedError


def pca_reduce(X: np.ndarray, pca_dims: Optional[int],
               seed: int = 0) -> np.ndarray:
    """float32 ``X``, PCA-reduced to ``pca_dims`` when it has more columns.

    The one PCA of tsneviz before a neighbour search: the reducers and the
    shared neighbour graph (``tsneviz.analysis.graphs``) call it with the
    same settings, so for the same seed they search the same space.

    Args:
        X (np.ndarray): (N, C) samples.
        pca_dims (int | None): Target dimensions; None or 0: no PCA.
        seed (int): Seed of the randomized SVD. Defaults to 0.

    Returns:
        np.ndarray: (N, min(C, pca_dims)) float32, C-contiguous.

    Examples:
        >>> pca_reduce(np.random.rand(100, 80), 50).shape
        (100, 50)
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    if pca_dims and X.shape[1] > pca_dims and len(X) > pca_dims:
        from sklearn.decomposition import PCA
        X = PCA(n_components=pca_dims, svd_solver='randomized',
                random_state=seed).fit_transform(X).astype(np.float32)
    return X
