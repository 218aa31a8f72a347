"""What every reducer shares: the protocol callers use, and PCA before kNN."""
from typing import Callable, Optional, Tuple

import numpy as np

from tsneviz.errors import UserError
from tsneviz.params import validate_params

ProgressFn = Callable[[int, int, Optional[float]], None]


class BaseReducer:
    """A layout method: ``fit_transform`` (N, C) features to (N, d) coords.

    ``__init__`` only validates and stores (scikit-learn's convention):
    ``params`` stay as given, and what a fit finds or decides is fitted
    state, ending in an underscore (``embedding_``). Subclasses declare
    ``name`` (for titles), ``constraints`` (the one declaration of what
    each parameter accepts: validation, config keys, CLI flags and the
    server's model are read from it), ``defaults`` and ``descriptions``
    (the parameters that are command-line flags, with their help), and are
    registered in :data:`tsneviz.registry.REDUCERS` under their
    ``--method`` name.

    What callers use, and nothing else:

    * :meth:`build`: the reducer of a method's settings;
    * :meth:`n_neighbors_for`: how many neighbours its fit looks at, so
      that a run's shared neighbour graph has enough of them;
    * :meth:`fit_transform` (with that graph), then :meth:`results`,
      :meth:`used_params`, :meth:`describe` and :meth:`sections` for the
      run's record, and ``used_graph_``;
    * :meth:`from_map` and :meth:`transform`: new points on a map made
      earlier, or a one-line refusal.

    Args:
        **params: Hyper-parameters by name; unknown ones are an error that
            lists the valid ones.
    """

    name = ''
    constraints: dict = {}
    defaults: dict = {}
    descriptions: dict = {}
    #: How :meth:`transform` places new points (run.json's placed layers).
    placement = ''
    #: Whether the last fit took its neighbours from the graph it was
    #: given (a fitted value: False until a fit says otherwise).
    used_graph_ = False

    @classmethod
    def declared(cls) -> dict:
        """``{parameter: (constraints, {variant: default})}`` of the method.

        The variant is the method itself; t-SNE has one per backend.
        """
        return {name: (row, {'': cls.defaults.get(name)})
                for name, row in cls.constraints.items()}

    @classmethod
    def build(cls, **settings) -> 'BaseReducer':
        """The reducer of these settings (what ``REDUCERS.build`` calls).

        An instance of ``cls``: the class itself here; t-SNE builds the
        backend its ``backend`` setting names, a subclass.
        """
        return cls(**settings)

    @classmethod
    def from_map(cls, params: dict, X: np.ndarray,
                 embedding: np.ndarray) -> 'BaseReducer':
        """The fitted reducer of a map made earlier, to :meth:`transform`.

        The reading of a run directory stays with :class:`tsneviz.rundir.
        Run`; this takes what it read.

        Args:
            params (dict): The parameters the map was made with (a run's
                ``layout.params``).
            X (np.ndarray): (N, C) features the map was made of.
            embedding (np.ndarray): (N, d) the map.

        Returns:
            BaseReducer: With ``embedding_`` set; one that cannot place
            points still refuses in :meth:`transform`.
        """
        reducer = cls.build(**params)
        reducer.embedding_ = np.asarray(embedding, dtype=np.float32)
        return reducer

    def __init__(self, **params):
        self.ignored_ = []
        self.params = {**self.defaults, **params}
        validate_params(self.params, self.constraints, self.name)

    def check_n_samples(self, n_samples: int) -> None:
        """Raise a UserError when ``n_samples`` is too few for the method."""

    def n_neighbors_for(self, n_samples: int) -> int:
        """Neighbours per sample the fit looks at for ``n_samples`` samples.

        A run's shared neighbour graph is built with at least this many
        and handed to :meth:`fit_transform`; 0 (a method that searches no
        neighbours): the fit is given no graph.
        """
        return 0

    def describe(self) -> str:
        """Short text for plot titles, e.g. ``'UMAP · 15 neighbours'``."""
        return self.name

    def results(self) -> dict:
        """Fitted figures for run.json (empty before fitting)."""
        return {}

    def used_params(self) -> dict:
        """``params`` with the values the fit really used (run.json's).

        The same as ``params`` unless the fit had to change one, e.g.
        openTSNE's perplexity for few samples (``perplexity_``).
        """
        return dict(self.params)

    def sections(self) -> dict:
        """run.json sections of its own besides ``layout`` (none here)."""
        return {}

    def search_space(self, shape: Tuple[int, int]) -> str:
        """The space :meth:`reduce_dims` gives for features of ``shape``.

        Named as a shared neighbour graph names its space
        (:func:`tsneviz.analysis.graphs.shared_graph`): ``'pca<D>'`` or
        ``'features'``.
        """
        dims = self.params.get('pca_dims')
        return f'pca{dims}' if _reduces(shape, dims) else 'features'

    def search_points(self, X: np.ndarray, graph: Optional[dict] = None
                      ) -> Tuple[np.ndarray, Optional[dict]]:
        """``X`` in the reducer's search space, and the graph if it fits.

        A shared neighbour graph is taken when its neighbours are of the
        space and metric this reducer would search, with at least
        :meth:`n_neighbors_for` columns: the fit is then the one it would
        make with its own search. Its ``points`` (``X`` in that space)
        save the PCA.

        Args:
            X (np.ndarray): (N, C) features.
            graph (dict, optional): See :meth:`fit_transform`.

        Returns:
            tuple: ``(points, graph)``: (N, D) float32 points to fit, and
            the graph, or None where it does not fit.
        """
        fits = graph is not None and \
            len(graph['indices']) == len(X) and \
            graph['space'] == self.search_space(X.shape) and \
            graph['metric'] == self.params.get('metric', 'euclidean') and \
            graph['k'] >= self.n_neighbors_for(len(X))
        if not fits:
            return self.reduce_dims(X), None
        points = graph.get('points')
        if points is None:
            return self.reduce_dims(X), graph
        self.check_n_samples(len(X))
        return points, graph

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

    def fit_transform(self, X: np.ndarray, graph: Optional[dict] = None,
                      progress: Optional[ProgressFn] = None) -> np.ndarray:
        """Embed ``X`` (N, C) into (N, n_components) float32 coordinates.

        Args:
            X (np.ndarray): (N, C) features.
            graph (dict, optional): A shared neighbour graph of ``X``
                (:func:`tsneviz.analysis.graphs.shared_graph`), given when
                :meth:`n_neighbors_for` is above 0, with ``points``: ``X``
                in the graph's space where that is not ``X`` itself. A
                reducer takes its neighbours when they are of its own
                search space and metric, with enough columns
                (``used_graph_``), else searches its own. Defaults to None.
            progress (callable, optional): ``progress(done, total, kl)``.

        Returns:
            np.ndarray: (N, n_components) float32, also ``embedding_``.
        """
        raise NotImplementedError

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Place new rows on the fitted map without moving it.

        Args:
            X (np.ndarray): (M, C) features of the map's width.

        Returns:
            np.ndarray: (M, n_components) float32 map coordinates.

        Raises:
            UserError: In one line, from a method whose map cannot take
                new points (this default).
        """
        raise UserError(f'{self.name} maps cannot take new points without '
                        'moving; re-run with --method tsne (or pca) and '
                        'place onto that run')


def _reduces(shape: Tuple[int, int], pca_dims: Optional[int]) -> bool:
    """Whether :func:`pca_reduce` reduces features of ``shape``."""
    n_samples, n_features = shape
    return bool(pca_dims) and n_features > pca_dims and n_samples > pca_dims


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
    return pca_projection(X, pca_dims, seed)[0]


def pca_projection(X: np.ndarray, pca_dims: Optional[int], seed: int = 0
                   ) -> Tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """:func:`pca_reduce` of ``X``, and the same projection for new rows.

    Placing new points on a map (:meth:`BaseReducer.transform`) searches
    their neighbours in the space the map's own were searched in.

    Args:
        X (np.ndarray): (N, C) samples.
        pca_dims (int | None): Target dimensions; None or 0: no PCA.
        seed (int): Seed of the randomized SVD. Defaults to 0.

    Returns:
        tuple: ``(X reduced, project)``; ``project(Y)`` maps (M, C) rows
        into the same float32 space.

    Examples:
        >>> X = np.random.rand(100, 80)
        >>> reduced, project = pca_projection(X, 50)
        >>> np.allclose(project(X[:5]), reduced[:5], atol=1e-4)
        True
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not _reduces(X.shape, pca_dims):
        return X, lambda Y: np.ascontiguousarray(Y, dtype=np.float32)
    from sklearn.decomposition import PCA
    pca = PCA(n_components=pca_dims, svd_solver='randomized',
              random_state=seed)
    reduced = pca.fit_transform(X).astype(np.float32)
    return reduced, lambda Y: pca.transform(
        np.asarray(Y, dtype=np.float32)).astype(np.float32)
