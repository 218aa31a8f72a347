"""Neighbour graphs: how the k nearest neighbours in feature space are found.

Each entry of :data:`tsneviz.registry.NEIGHBOR_GRAPHS` is a builder
``fn(features, metric)`` that returns a fitted index with scikit-learn's
``kneighbors(X, n_neighbors) -> (distances, indices)``. An index may also
offer ``graph(k) -> (indices, distances)``, the k nearest OTHER samples of
every sample at once, which approximate searches do much faster than one
query per row. ``exact`` is brute force; ``annoy`` and ``pynndescent``
are the approximate searches openTSNE wraps; ``hnsw`` is hnswlib with
settings of its own (:class:`HNSWSearch`).

:func:`shared_graph` builds the ONE neighbour graph of a run and feature
key (``neighbors_<key>.npz``): the t-SNE affinities, the k-NN accuracy in
feature space, the ``neighbors`` step and the explorer all read it, so a
run searches neighbours once. Up to :data:`EXACT_MAX_SAMPLES` points it is
exact, cosine, on the full features (what runs always did); above, it is
euclidean on the t-SNE's 50 PCA components (the space and metric openTSNE
searches by default): exact up to :data:`APPROXIMATE_MIN_SAMPLES` (in 50
dimensions brute force was faster than the approximate searches at 100k),
approximate above (:func:`auto_builder`), and its recall
against exact search is measured on a sample and recorded.
"""
import time
from typing import Optional

import numpy as np

from tsneviz.metrics import nearest_neighbors
from tsneviz.registry import NEIGHBOR_GRAPHS

#: The distances a neighbour graph is asked for.
METRICS = ('cosine', 'euclidean')

#: Up to this many points the shared graph is searched on the full features
#: (cosine), so small runs are as before; above, in 50 PCA dimensions:
#: brute force costs O(N^2 C) and took 209 s at 100k x 512 on 2 cores.
EXACT_MAX_SAMPLES = 5000

#: Dimensions of the PCA the graph is searched in above EXACT_MAX_SAMPLES:
#: the t-SNE's own ``pca_dims``, so the graph is the t-SNE's neighbours.
GRAPH_PCA_DIMS = 50

#: From this many points ``auto`` picks an approximate search. Below it,
#: exact search in 50 PCA dimensions was the fastest (benchmarks/
#: bench_knn.py, table in benchmarks/README.md: at 100k, k = 90, exact 77 s
#: at recall 1, hnsw 131 s at 0.990, annoy 154 s at 0.940, on 2 loaded
#: cores); brute force grows as N^2, so from about twice that it loses.
APPROXIMATE_MIN_SAMPLES = 200_000

#: The approximate builders ``auto`` picks from at APPROXIMATE_MIN_SAMPLES
#: points and more, the first one installed: hnsw was faster than annoy at
#: higher recall; annoy (bundled with openTSNE) is the fallback without
#: the optional hnswlib.
AUTO_BUILDERS = ('hnsw', 'annoy')

#: Rows whose exact neighbours the recall of a graph is checked against.
RECALL_SAMPLES = 1000


@NEIGHBOR_GRAPHS.register_module(name='exact')
def exact_graph(features: np.ndarray, metric: str = 'cosine'):
    """Exact k-NN by brute force (scikit-learn's ``NearestNeighbors``).

    Brute force is exact for both metrics and what scikit-learn picks for
    cosine anyway; features are a few hundred dimensions, where trees do
    not help.

    Args:
        features (np.ndarray): (N, C) features to search.
        metric (str): ``'cosine'`` (1 - cosine similarity) or
            ``'euclidean'``. Defaults to ``'cosine'``.

    Returns:
        NearestNeighbors: Fitted; ``kneighbors(X, n_neighbors=k)``.

    Examples:
        >>> index = exact_graph(np.eye(3, dtype=np.float32))
        >>> index.kneighbors(np.eye(3)[:1], n_neighbors=1)[1]
        array([[0]])
    """
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(metric=metric, algorithm='brute').fit(features)


class OpenTSNESearch:
    """An approximate search of ``openTSNE.nearest_neighbors``, as an index.

    openTSNE's classes search for a fixed k at build time and return the
    graph of the indexed points without themselves; this wraps them in the
    interface of :func:`exact_graph` plus ``graph(k)``, and converts their
    distances to the metric asked for. Seeded (``random_state=0``), all
    cores.

    Args:
        features (np.ndarray): (N, C) features to search.
        metric (str): ``'cosine'`` or ``'euclidean'``. Defaults to
            ``'cosine'``.
    """

    #: Class name in ``openTSNE.nearest_neighbors``.
    knn_class = ''

    def __init__(self, features: np.ndarray, metric: str = 'cosine'):
        self.features = np.ascontiguousarray(features, dtype=np.float32)
        self.metric = metric
        self.index = None

    def _distance(self, distances: np.ndarray) -> np.ndarray:
        """The library's distances in ``self.metric``."""
        return distances

    def graph(self, k: int):
        """The ``k`` nearest other samples of every sample.

        Returns:
            tuple: ``indices`` (N, k) and ``distances`` (N, k), nearest
            first.
        """
        import openTSNE.nearest_neighbors as nn

        self.index = getattr(nn, self.knn_class)(
            self.features, int(k), metric=self.metric, n_jobs=-1,
            random_state=0)
        indices, distances = self.index.build()
        return np.asarray(indices), self._distance(np.asarray(distances))

    def kneighbors(self, X, n_neighbors: int):
        """Nearest indexed samples of new rows ``X`` (builds on first use)."""
        if self.index is None:
            self.graph(n_neighbors)
        indices, distances = self.index.query(
            np.ascontiguousarray(X, dtype=np.float32), int(n_neighbors))
        return self._distance(np.asarray(distances)), np.asarray(indices)


@NEIGHBOR_GRAPHS.register_module(name='annoy')
class AnnoySearch(OpenTSNESearch):
    """Annoy random-projection trees (50 trees), bundled with openTSNE."""

    knn_class = 'Annoy'

    def _distance(self, distances):
        # annoy's 'angular' distance is sqrt(2 (1 - cos)); cosine is 1 - cos
        return distances ** 2 / 2 if self.metric == 'cosine' else distances


@NEIGHBOR_GRAPHS.register_module(name='pynndescent')
class NNDescentSearch(OpenTSNESearch):
    """Nearest-neighbour descent (``pynndescent``), as openTSNE runs it."""

    knn_class = 'NNDescent'


@NEIGHBOR_GRAPHS.register_module(name='hnsw')
class HNSWSearch:
    """Hierarchical navigable small-world graphs (``hnswlib``, optional).

    Built here rather than through openTSNE's wrapper, whose settings
    (``ef_construction=200``, query ``ef = 2k``) are tuned for recall, not
    for a graph of every point. On the PCA-50 of ``bench_scale.py``'s
    features, k = 90, two threads (``bench_knn.py --data scale``, table
    in benchmarks/README.md): at 200k, openTSNE's settings took 67.6 s at
    recall 0.994, these (M 16, ef_construction 64, ef 100) 31.0 s at
    0.972; at 1M in ``bench_scale.py``, 206 s at recall 0.970 (476 s at
    0.993 before). A t-SNE's affinities do not need the last few per cent of
    recall (openTSNE's own default, annoy, gives about 0.94), and the run
    records the recall it got.

    Args:
        features (np.ndarray): (N, C) features to search.
        metric (str): ``'cosine'`` or ``'euclidean'``. Defaults to
            ``'cosine'``.
    """

    #: Links per node, and the candidate list while inserting.
    M = 16
    EF_CONSTRUCTION = 64
    #: Candidate list of a query: at least this, and always above k.
    EF_MIN = 100

    def __init__(self, features: np.ndarray, metric: str = 'cosine'):
        self.features = np.ascontiguousarray(features, dtype=np.float32)
        self.metric = metric
        self.index = None

    def _build(self):
        import hnswlib

        index = hnswlib.Index(
            space='cosine' if self.metric == 'cosine' else 'l2',
            dim=self.features.shape[1])
        index.init_index(max_elements=len(self.features),
                         ef_construction=self.EF_CONSTRUCTION, M=self.M,
                         random_seed=0)
        index.add_items(self.features, num_threads=-1)
        self.index = index

    def _query(self, X, k: int):
        self.index.set_ef(max(self.EF_MIN, k + 1))
        indices, distances = self.index.knn_query(X, k=k, num_threads=-1)
        if self.metric == 'euclidean':
            # hnswlib's 'l2' is the squared distance
            distances = np.sqrt(np.maximum(distances, 0))
        return indices.astype(np.int64), distances

    def graph(self, k: int):
        """The ``k`` nearest other samples of every sample.

        Returns:
            tuple: ``indices`` (N, k) and ``distances`` (N, k), nearest
            first, never the sample itself.
        """
        if self.index is None:
            self._build()
        k = int(k)
        indices, distances = self._query(self.features, k + 1)
        # Each row drops itself; where the search missed itself (duplicate
        # points can push it out), the farthest of its k + 1 goes instead.
        rows = np.arange(len(indices))
        is_self = indices == rows[:, None]
        is_self[~is_self.any(axis=1), -1] = True
        is_self[np.cumsum(is_self, axis=1) > 1] = False
        keep = ~is_self
        return (indices[keep].reshape(-1, k),
                distances[keep].reshape(-1, k))

    def kneighbors(self, X, n_neighbors: int):
        """Nearest indexed samples of new rows ``X`` (builds on first use)."""
        if self.index is None:
            self._build()
        indices, distances = self._query(
            np.ascontiguousarray(X, dtype=np.float32), int(n_neighbors))
        return distances, indices


def build_graph(features: np.ndarray, k: int, metric: str = 'cosine',
                builder: str = 'exact'):
    """The ``k`` nearest other samples of every sample, by one builder.

    Args:
        features (np.ndarray): (N, C) samples.
        k (int): Neighbours per sample, 1 <= k < N.
        metric (str): ``'cosine'`` or ``'euclidean'``. Defaults to
            ``'cosine'``.
        builder (str): A ``NEIGHBOR_GRAPHS`` key. Defaults to ``'exact'``.

    Returns:
        tuple: ``indices`` (N, k) int64 and ``distances`` (N, k) float64,
        nearest first, never the sample itself.

    Examples:
        >>> idx, dist = build_graph(np.eye(4), 2, 'euclidean')
        >>> idx.shape
        (4, 2)
    """
    index = NEIGHBOR_GRAPHS.build(dict(type=builder, features=features,
                                       metric=metric))
    if hasattr(index, 'graph'):
        indices, distances = index.graph(k)
        return (np.asarray(indices, np.int64),
                np.maximum(np.asarray(distances, np.float64), 0))
    return nearest_neighbors(features, k, metric, index=index)


def graph_recall(features: np.ndarray, indices: np.ndarray,
                 metric: str = 'cosine', samples: int = RECALL_SAMPLES,
                 seed: int = 0) -> float:
    """Share of the true k nearest neighbours a graph found (recall@k).

    Exact neighbours are searched for a seeded sample of rows only, so
    this costs ``samples`` brute-force queries (well under a second at
    100k x 50).

    Args:
        features (np.ndarray): (N, C) samples the graph was built on.
        indices (np.ndarray): (N, k) the graph's neighbours.
        metric (str): The graph's metric. Defaults to ``'cosine'``.
        samples (int): Rows to check. Defaults to 1000.
        seed (int): Seed of the rows. Defaults to 0.

    Returns:
        float: Mean over the rows of |found & true| / k, in [0, 1].

    Examples:
        >>> X = np.random.default_rng(0).normal(size=(50, 3))
        >>> graph_recall(X, build_graph(X, 5)[0])
        1.0
    """
    n, k = indices.shape
    rows = np.arange(n) if n <= samples else np.sort(
        np.random.default_rng(seed).choice(n, samples, replace=False))
    true, _ = nearest_neighbors(features, k, metric, rows=rows)
    hits = [len(np.intersect1d(a, b)) for a, b in zip(true, indices[rows])]
    return float(np.mean(hits) / k)


def graph_space(features: np.ndarray, seed: int = 0):
    """The space and metric the shared graph of ``features`` is built in.

    Returns:
        tuple: ``(X, space, metric)``: the full features, ``'features'``
        and ``'cosine'`` up to :data:`EXACT_MAX_SAMPLES` rows; above, their
        PCA to :data:`GRAPH_PCA_DIMS` dimensions (the t-SNE's own PCA:
        same settings and seed), ``'pca50'`` and ``'euclidean'``.
    """
    from tsneviz.reduction.base import pca_reduce

    if len(features) <= EXACT_MAX_SAMPLES:
        return features, 'features', 'cosine'
    X = pca_reduce(features, GRAPH_PCA_DIMS, seed)
    # features of 50 columns or fewer are not reduced (nor by the t-SNE)
    space = 'features' if X.shape[1] == features.shape[1] else \
        f'pca{GRAPH_PCA_DIMS}'
    return X, space, 'euclidean'


def auto_builder(n_samples: int) -> str:
    """The builder ``auto`` means for ``n_samples`` points.

    Returns:
        str: ``'exact'`` below :data:`APPROXIMATE_MIN_SAMPLES`, else the
        first of :data:`AUTO_BUILDERS` whose library is installed.
    """
    import importlib.util

    if n_samples < APPROXIMATE_MIN_SAMPLES:
        return 'exact'
    needs = {'hnsw': 'hnswlib'}
    for name in AUTO_BUILDERS:
        module = needs.get(name)
        if module is None or importlib.util.find_spec(module) is not None:
            return name
    return 'exact'


def shared_graph(features: np.ndarray, k: int, builder: str = 'auto',
                 seed: int = 0, space: Optional[tuple] = None) -> dict:
    """The one neighbour graph of a run's feature key.

    Args:
        features (np.ndarray): (N, C) features.
        k (int): Neighbours per sample (lowered to N - 1): enough for every
            reader, e.g. ``max(3 x perplexity, 20)``.
        builder (str): A ``NEIGHBOR_GRAPHS`` key, or ``'auto'``
            (:func:`auto_builder`). Defaults to ``'auto'``.
        seed (int): Seed of the PCA and of the recall sample.
        space (tuple, optional): ``graph_space(features, seed)`` when the
            caller already has it (the PCA is then not done twice).

    Returns:
        dict: ``indices`` int32 and ``distances`` float32 (N, k),
        ``metric``, ``k``, ``builder`` (the one used), ``space``
        (``'features'`` or ``'pca50'``), ``recall`` (recall@k against exact
        search on :data:`RECALL_SAMPLES` rows; 1.0 for ``exact``) and
        ``seconds`` (search and recall check, not the PCA).

    Examples:
        >>> graph = shared_graph(np.random.rand(300, 16), k=20)
        >>> graph['builder'], graph['space'], graph['indices'].shape
        ('exact', 'features', (300, 20))
    """
    X, space_name, metric = space if space is not None else \
        graph_space(features, seed)
    if builder == 'auto':
        builder = auto_builder(len(X))
    k = int(min(k, len(X) - 1))
    started = time.perf_counter()
    indices, distances = build_graph(X, k, metric, builder)
    recall = 1.0 if builder == 'exact' else \
        graph_recall(X, indices, metric, seed=seed)
    return dict(indices=indices.astype(np.int32),
                distances=distances.astype(np.float32), metric=metric,
                k=k, builder=builder, space=space_name,
                recall=round(recall, 4),
                seconds=round(time.perf_counter() - started, 3))
