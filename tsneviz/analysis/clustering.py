"""Clusterers: k-means, agglomerative and HDBSCAN, all from scikit-learn.

Clusters found in the features (not in the t-SNE map, whose distances
between groups mean little) show how the model itself groups the data; a
cluster that mixes two classes, or that holds most of a class's errors, is
where to look. Each clusterer validates its parameters against a
constraints table when built and assigns one integer id per sample with
``fit_predict``; HDBSCAN marks samples that belong to no cluster with
``-1`` (noise), as scikit-learn does.

========== ================================ ===================================
method     parameters (defaults)            scikit-learn
========== ================================ ===================================
kmeans     n_clusters, n_init=10, seed=0    ``KMeans``
agglom.    n_clusters, linkage='ward',      ``AgglomerativeClustering``
           metric='euclidean'
hdbscan    min_cluster_size=5,              ``HDBSCAN`` (finds the number of
           min_samples=None,                clusters itself; no n_clusters)
           cluster_selection_epsilon=0.0,
           metric='euclidean'
========== ================================ ===================================

Above ``large_n`` samples (:data:`LARGE_N` unless given) each method
switches to a path that stays near-linear in N, and says so in its
``strategy_``:

========== ===========================================================
method     above ``large_n`` samples
========== ===========================================================
kmeans     ``MiniBatchKMeans`` (batches of 4096) instead of Lloyd's
           k-means over all samples at every step
agglom.    refused with a UserError naming the methods to use instead:
           quadratic in time and memory, even along a neighbour graph
hdbscan    PCA to :data:`HDBSCAN_LARGE_DIMS` dimensions, HDBSCAN on a
           seeded sample of ``large_n`` samples, every other sample
           takes the cluster (or noise) of its nearest sampled one
========== ===========================================================

The PCA before clustering is fitted on ``large_n`` sampled rows too, then
applied to all (:func:`reduce_for_clustering`).
"""
import numbers
import time
from typing import List, Optional

import numpy as np

from tsneviz.errors import UserError
from tsneviz.params import Interval, Options, validate_params
from tsneviz.registry import CLUSTERERS, registered

#: Cluster id scikit-learn's HDBSCAN gives to samples in no cluster.
NOISE = -1
#: From this many samples on, the clusterers and the PCA before them take
#: their near-linear paths (see the module docstring). At 20k samples
#: scikit-learn's exact Ward linkage already holds a 1.6 GB distance
#: matrix, and HDBSCAN on 20k samples in 10 dimensions took 20 s on the
#: busy 2-core machine (4k: 1.5 s), growing faster than N.
LARGE_N = 20_000
#: HDBSCAN's space above ``large_n`` samples: its density estimate and
#: the nearest-sample assignment use KD-trees, fast in few dimensions.
HDBSCAN_LARGE_DIMS = 10
#: MiniBatchKMeans' batch: scikit-learn's advice is at least 256 x cores.
MINIBATCH_SIZE = 4096


class BaseClusterer:
    """Shared parameter handling: ``__init__`` validates and stores.

    Fitted state ends in an underscore (``labels_``), as in scikit-learn.

    Args:
        **params: Parameters by name; see the module table. A parameter left
            out takes the clusterer's default; an unknown one is an error.
    """

    name = ''
    constraints: dict = {}
    defaults: dict = {}

    def __init__(self, **params):
        self.params = {**self.defaults, **params}
        validate_params(self.params, self.constraints, self.name)

    def _check(self, X: np.ndarray, large: bool = False) -> np.ndarray:
        # float32 stays float32 on the large path: 1M x 512 doubles are 4 GB
        X = np.asarray(X, dtype=np.float32 if large and
                       np.asarray(X).dtype == np.float32 else np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise UserError(f'{self.name}: expected a non-empty (N, C) '
                            f'matrix, got shape {X.shape}')
        if not np.isfinite(X).all():
            raise UserError(f'{self.name}: the input has NaN or Inf values')
        n_clusters = self.params.get('n_clusters')
        if n_clusters is not None and n_clusters > len(X):
            raise UserError(f'{self.name}: n_clusters={n_clusters} is more '
                            f'than the {len(X)} samples; lower --n-clusters')
        return X

    def fit_predict(self, X: np.ndarray, large_n: Optional[int] = LARGE_N,
                    seed: int = 0) -> np.ndarray:
        """Cluster ``X`` (N, C); return (N,) int64 ids (``-1``: noise).

        Args:
            X (np.ndarray): (N, C) samples.
            large_n (int, optional): Above this many samples take the
                near-linear path (module docstring); None never does.
                Defaults to :data:`LARGE_N`.
            seed (int): Seed of the large path's sampling. Defaults to 0.

        Returns:
            np.ndarray: (N,) int64 ids. ``strategy_`` says which path ran:
            ``'exact'`` or the large path's name.
        """
        large = large_n is not None and len(X) > large_n
        X = self._check(X, large)
        if large:
            labels = self._fit_predict_large(X, large_n, seed)
        else:
            self.strategy_ = 'exact'
            labels = self._fit_predict(X)
        self.labels_ = np.asarray(labels, dtype=np.int64)
        return self.labels_

    def _fit_predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _fit_predict_large(self, X, large_n, seed):
        """The near-linear path; the method's own unless it has none."""
        self.strategy_ = 'exact'
        return self._fit_predict(X)


def methods() -> List[str]:
    """The clustering methods: the CLUSTERERS registry's names, in order.

    ``--method`` of ``tools/cluster.py`` and every check of a method name
    read them here, so a newly registered clusterer is a choice at once.

    Examples:
        >>> methods()
        ['kmeans', 'agglomerative', 'hdbscan']
    """
    return list(registered(CLUSTERERS))


# Each clusterer is registered under its --method name (its ``name``).
@CLUSTERERS.register_module(name='kmeans')
class KMeansClusterer(BaseClusterer):
    """k-means (``sklearn.cluster.KMeans``): compact, equal-variance groups.

    The right first look at a classifier's features: a model that separates
    its classes puts each one in its own compact blob.

    Examples:
        >>> clusterer = CLUSTERERS.build(dict(type='kmeans', n_clusters=3))
        >>> clusterer.fit_predict(np.random.rand(60, 8)).shape
        (60,)
    """

    name = 'kmeans'
    constraints = {
        'n_clusters': [Interval(numbers.Integral, 1)],
        'n_init': [Interval(numbers.Integral, 1)],
        'max_iter': [Interval(numbers.Integral, 1)],
        'seed': [Interval(numbers.Integral, 0)],
    }
    # Ten restarts rather than scikit-learn's 'auto' (one for k-means++):
    # a bad start that merges two classes is exactly the kind of cluster
    # a user would then chase, and ten restarts on a few thousand samples
    # take well under a second.
    defaults = dict(n_clusters=8, n_init=10, max_iter=300, seed=0)

    def _fit_predict(self, X):
        from sklearn.cluster import KMeans
        p = self.params
        return KMeans(n_clusters=p['n_clusters'], n_init=p['n_init'],
                      max_iter=p['max_iter'],
                      random_state=p['seed']).fit_predict(X)

    def _fit_predict_large(self, X, large_n, seed):
        # Each step looks at one batch instead of all N samples; the
        # n_init starts are compared on a sample of 3 batches, so ten of
        # them cost little.
        from sklearn.cluster import MiniBatchKMeans
        p = self.params
        self.strategy_ = 'minibatch'
        return MiniBatchKMeans(
            n_clusters=p['n_clusters'], n_init=p['n_init'],
            max_iter=p['max_iter'], batch_size=MINIBATCH_SIZE,
            random_state=p['seed']).fit_predict(X)


@CLUSTERERS.register_module(name='agglomerative')
class AgglomerativeClusterer(BaseClusterer):
    """Hierarchical clustering (``sklearn.cluster.AgglomerativeClustering``).

    Deterministic, and with ``linkage='single'`` or ``'average'`` it follows
    elongated or curved groups that k-means would cut in pieces.

    Examples:
        >>> clusterer = CLUSTERERS.build(
        ...     dict(type='agglomerative', n_clusters=3, linkage='average'))
        >>> clusterer.fit_predict(np.random.rand(60, 8)).max()
        2
    """

    name = 'agglomerative'
    constraints = {
        'n_clusters': [Interval(numbers.Integral, 1)],
        'linkage': [Options(['ward', 'complete', 'average', 'single'])],
        'metric': [Options(['euclidean', 'cosine', 'manhattan'])],
    }
    defaults = dict(n_clusters=8, linkage='ward', metric='euclidean')

    def __init__(self, **params):
        super().__init__(**params)
        if self.params['linkage'] == 'ward' and \
                self.params['metric'] != 'euclidean':
            # Ward minimises a variance, which only Euclidean distance has.
            raise UserError("agglomerative: linkage='ward' needs "
                            "metric='euclidean'; pick another --linkage")

    def _fit_predict(self, X):
        from sklearn.cluster import AgglomerativeClustering
        p = self.params
        return AgglomerativeClustering(
            n_clusters=p['n_clusters'], linkage=p['linkage'],
            metric=p['metric']).fit_predict(X)

    def _fit_predict_large(self, X, large_n, seed):
        check_size(self.name, len(X), large_n)


@CLUSTERERS.register_module(name='hdbscan')
class HDBSCANClusterer(BaseClusterer):
    """Density-based clustering (``sklearn.cluster.HDBSCAN``).

    It finds the number of clusters itself and leaves samples of sparse
    regions out (id ``-1``): ambiguous samples between classes often end up
    there, which is worth a look of its own.

    Examples:
        >>> clusterer = CLUSTERERS.build(dict(type='hdbscan',
        ...                                   min_cluster_size=10))
        >>> ids = clusterer.fit_predict(np.random.rand(200, 2))
        >>> int(ids.min()) >= -1
        True
    """

    name = 'hdbscan'
    constraints = {
        'min_cluster_size': [Interval(numbers.Integral, 2)],
        'min_samples': [None, Interval(numbers.Integral, 1)],
        'cluster_selection_epsilon': [Interval(numbers.Real, 0)],
        'metric': [Options(['euclidean', 'cosine', 'manhattan'])],
    }
    # scikit-learn's defaults; 5 suits per-class samples of a few dozen.
    defaults = dict(min_cluster_size=5, min_samples=None,
                    cluster_selection_epsilon=0.0, metric='euclidean')

    def _fit_predict(self, X):
        from sklearn.cluster import HDBSCAN
        p = self.params
        if p['min_cluster_size'] > len(X):
            raise UserError(f'hdbscan: min_cluster_size='
                            f'{p["min_cluster_size"]} is more than the '
                            f'{len(X)} samples; lower --min-cluster-size')
        # copy=True: never let scikit-learn modify the caller's matrix (and
        # it silences the FutureWarning about the default changing).
        return HDBSCAN(min_cluster_size=p['min_cluster_size'],
                       min_samples=p['min_samples'],
                       cluster_selection_epsilon=float(
                           p['cluster_selection_epsilon']),
                       metric=p['metric'], copy=True).fit_predict(X)

    def _fit_predict_large(self, X, large_n, seed):
        from sklearn.neighbors import NearestNeighbors
        self.strategy_ = 'subsample'
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(len(X), large_n, replace=False))
        X = reduce_for_clustering(X, HDBSCAN_LARGE_DIMS, seed,
                                  fit_rows=large_n)
        sample_ids = self._fit_predict(X[sample])
        # Each other sample joins the cluster of its nearest sampled one;
        # next to noise it is noise.
        # a KD-tree in HDBSCAN_LARGE_DIMS dimensions, queried on all cores
        nearest = NearestNeighbors(n_neighbors=1, n_jobs=-1,
                                   metric=self.params['metric']).fit(
                                       X[sample])
        ids = sample_ids[nearest.kneighbors(X, return_distance=False)[:, 0]]
        ids[sample] = sample_ids
        return ids


def build_clusterer(method: str = 'kmeans', **params) -> BaseClusterer:
    """Build a clusterer from a ``--method`` name and parameters.

    Args:
        method (str): ``'kmeans'``, ``'agglomerative'`` or ``'hdbscan'``.
            Defaults to ``'kmeans'``.
        **params: Parameters of that method (see the module table); one left
            out takes its default.

    Returns:
        BaseClusterer: The validated, unfitted clusterer.

    Raises:
        UserError: For an unknown method, a parameter the method does not
            take, or a bad value.

    Examples:
        >>> build_clusterer('hdbscan', min_cluster_size=8).params['metric']
        'euclidean'
    """
    check_method(method)
    if method == 'hdbscan' and params.get('n_clusters') is not None:
        raise UserError('hdbscan finds the number of clusters itself; drop '
                        '--n-clusters or use --method kmeans/agglomerative')
    # None means "the default" here, as for an unset CLI flag.
    params = {k: v for k, v in params.items() if v is not None}
    return CLUSTERERS.build(dict(type=method, **params))


def check_method(method: str) -> str:
    """``method`` when it is a registered clusterer, else a UserError."""
    if method not in methods():
        raise UserError(f'unknown clustering method {method!r}; choose one '
                        f'of {", ".join(methods())}')
    return method


def check_size(method: str, n_samples: int,
               large_n: Optional[int] = LARGE_N) -> None:
    """Refuse agglomerative clustering of more than ``large_n`` samples.

    Its time and memory grow with N^2 (1.6 GB of distances at 20k). A
    connectivity graph (a run's 15-NN graph) does not rescue it: on 30k
    blobs scikit-learn took 180 s on 2 busy cores, most of it joining the
    graph's separate components pairwise, quadratic again.

    Raises:
        UserError: Naming the methods that scale.

    Examples:
        >>> check_size('agglomerative', 10_000)
        >>> check_size('kmeans', 10**6)
    """
    if method == 'agglomerative' and large_n is not None and \
            n_samples > large_n:
        raise UserError(
            f'agglomerative clustering of {n_samples} samples is quadratic '
            f'in time and memory (above {large_n} samples); use --method '
            'kmeans (MiniBatchKMeans at this size) or hdbscan')


def default_n_clusters(labels: np.ndarray) -> int:
    """The number of clusters to look for when none is given.

    One per class present: a model that separates its classes then gives
    one pure cluster per class, so any cluster that mixes classes (or a
    class split over two clusters) stands out as something the model
    confuses, rather than as an artefact of a k chosen too small or large.

    Args:
        labels (np.ndarray): Ground-truth label of each sample.

    Returns:
        int: The number of distinct labels (at least 1).

    Examples:
        >>> default_n_clusters(np.array([3, 3, 7, 9]))
        3
    """
    return max(1, len(np.unique(np.asarray(labels))))


def reduce_for_clustering(X: np.ndarray, pca_dims: Optional[int] = 50,
                          seed: int = 0,
                          fit_rows: Optional[int] = None) -> np.ndarray:
    """PCA ``X`` to ``pca_dims`` dimensions when it has more.

    Distances in a few hundred or thousand feature dimensions are dominated
    by noise directions ("distance concentration"), which hurts k-means and
    above all the density estimate of HDBSCAN; 50 principal components keep
    the class structure of deep features (the same recipe as before the
    t-SNE neighbour search) and make every method faster.

    Args:
        X (np.ndarray): (N, C) matrix.
        pca_dims (int, optional): Target dimensions; None or 0 turns PCA
            off. Defaults to 50.
        seed (int): Seed of the randomized SVD (and of the rows it is
            fitted on). Defaults to 0.
        fit_rows (int, optional): With more rows than this, fit the PCA on
            this many seeded rows and apply it to all (the components of
            50k samples are those of a million to within noise, at a
            twentieth of the cost), keeping float32. Defaults to None (fit
            on all).

    Returns:
        np.ndarray: (N, min(C, pca_dims)) float64 matrix (float32 when
        the PCA was fitted on sampled rows of a float32 ``X``).

    Examples:
        >>> reduce_for_clustering(np.random.rand(100, 128), 20).shape
        (100, 20)
    """
    sampled = fit_rows is not None and len(X) > fit_rows
    X = np.asarray(X, dtype=np.float32 if sampled and
                   np.asarray(X).dtype == np.float32 else np.float64)
    if pca_dims is not None and (isinstance(pca_dims, bool) or
                                 not isinstance(pca_dims, numbers.Integral)
                                 or pca_dims < 0):
        raise UserError(f'pca_dims={pca_dims!r} is invalid; it must be an '
                        'integer >= 0 (0 turns PCA off)')
    if pca_dims and X.shape[1] > pca_dims and len(X) > pca_dims:
        from sklearn.decomposition import PCA
        pca = PCA(n_components=pca_dims, svd_solver='randomized',
                  random_state=seed)
        if not sampled:
            return pca.fit_transform(X)
        rows = np.random.default_rng(seed).choice(len(X), fit_rows,
                                                  replace=False)
        X = pca.fit(X[np.sort(rows)]).transform(X)
    return X


def cluster_features(X: np.ndarray, method: str = 'kmeans',
                     n_clusters: Optional[int] = None,
                     pca_dims: Optional[int] = 50, seed: int = 0,
                     large_n: Optional[int] = LARGE_N,
                     timings: Optional[dict] = None,
                     **params) -> np.ndarray:
    """Cluster a feature matrix (or an embedding), PCA-reduced first.

    Args:
        X (np.ndarray): (N, C) features, or (N, 2/3) t-SNE coordinates (PCA
            leaves those as they are, having no more than ``pca_dims``
            columns).
        method (str): ``'kmeans'``, ``'agglomerative'`` or ``'hdbscan'``.
            Defaults to ``'kmeans'``.
        n_clusters (int, optional): Number of clusters for k-means and
            agglomerative; must be None for HDBSCAN. None takes the
            method's default (8, scikit-learn's); :func:`cluster_run` passes
            :func:`default_n_clusters` instead. Defaults to None.
        pca_dims (int, optional): See :func:`reduce_for_clustering`.
            Defaults to 50.
        seed (int): Seed of the PCA and of k-means. Defaults to 0.
        large_n (int, optional): From this many samples on, the PCA and
            the method take their near-linear paths (module docstring);
            None never does. Defaults to :data:`LARGE_N`.
        timings (dict, optional): Filled with the seconds of each part
            (``pca``, ``fit``) and the ``strategy`` that ran. Defaults to
            None.
        **params: Other parameters of the method, e.g. ``linkage`` or
            ``min_cluster_size``.

    Returns:
        np.ndarray: (N,) int64 cluster ids; ``-1`` is HDBSCAN's noise.

    Examples:
        >>> X = np.concatenate([np.random.rand(30, 64), 5 + np.random.rand(
        ...     30, 64)])
        >>> ids = cluster_features(X, 'kmeans', n_clusters=2)
        >>> len(set(ids[:30])), len(set(ids[30:]))
        (1, 1)
    """
    if n_clusters is not None:
        params['n_clusters'] = n_clusters
    if method == 'kmeans':
        params.setdefault('seed', seed)
    clusterer = build_clusterer(method, **params)
    timings = {} if timings is None else timings
    started = time.perf_counter()
    X = reduce_for_clustering(X, pca_dims, seed, fit_rows=large_n)
    timings['pca'] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    ids = clusterer.fit_predict(X, large_n=large_n, seed=seed)
    timings['fit'] = round(time.perf_counter() - started, 3)
    timings['strategy'] = clusterer.strategy_
    return ids
