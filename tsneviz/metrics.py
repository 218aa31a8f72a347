"""How well classes separate in feature space and in an embedding of it.

The one home of the numbers tsneviz reports about a layout: k nearest
neighbours (:func:`nearest_neighbors`, which the stored neighbours of a run
and the near-duplicate threshold also use), k-NN accuracy,
trustworthiness and its dual continuity, the rank correlation of
distances, and silhouettes (per class for the report, overall for the
comparison of two runs).
"""
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from tsneviz.errors import UserError

#: Default cap on rows for trustworthiness, which needs an N x N matrix
#: (5000 rows: a few hundred MB and a few seconds).
TRUSTWORTHINESS_MAX_SAMPLES = 5000

#: silhouette_samples builds an N x N distance matrix; above this many rows
#: a class-stratified, seeded subsample is scored (5000 rows: ~200 MB).
SILHOUETTE_MAX_SAMPLES = 5000

# Rows per kneighbors call in nearest_neighbors: bounds the (chunk, N)
# distance block in memory and gives a progress bar something to count.
_KNN_CHUNK = 2048

# Upper bound on the elements of one (rows, k, k) vote comparison block,
# so voting on 100k points with a large k stays within tens of MB.
_VOTE_BLOCK_ELEMENTS = 4_000_000


def _as_2d(name, array):
    """Return ``array`` as a 2-D array, or raise ValueError naming it."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(
            f'{name} must be 2-D (n_samples, n_dims), got shape {array.shape}')
    return array


def check_k(k, n_samples: Optional[int] = None, of: str = '') -> int:
    """``k`` neighbours as an int: 1 or more, and fewer than ``n_samples``.

    The one check of a neighbour count, for every step and tool that takes
    a ``k``: a sample has ``n_samples - 1`` others to be its neighbours.

    Args:
        k (int): Neighbours asked for.
        n_samples (int, optional): Samples searched among, the sample
            itself included; None: only the first condition.
        of (str): Words naming those samples in the message, e.g.
            ``' of the run'``. Defaults to ''.

    Returns:
        int: ``k``.

    Raises:
        UserError: ``k`` is not a positive whole number, or not below
            ``n_samples``.

    Examples:
        >>> check_k(5, 10)
        5
        >>> check_k(10, 10)
        Traceback (most recent call last):
        tsneviz.errors.UserError: k 10 is larger than the 9 other samples; \
pass a smaller k
    """
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise UserError(f'k must be a positive integer, got {k!r}')
    if n_samples is not None and k > n_samples - 1:
        raise UserError(f'k {k} is larger than the {n_samples - 1} other '
                        f'samples{of}; pass a smaller k')
    return int(k)


def nearest_neighbors(X, k: int, metric: str = 'euclidean',
                      rows: Optional[Sequence[int]] = None,
                      index=None, chunk: int = _KNN_CHUNK,
                      progress: Optional[Callable[[int], None]] = None
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other samples of every sample, in chunks of rows.

    Exact: scikit-learn's ``NearestNeighbors`` picks brute force for
    cosine and for more than 15 dimensions (features), a tree for a 2-D or
    3-D layout. Each chunk asks for ``k + 1`` neighbours and drops the
    sample itself wherever it is: with exact duplicates it need not come
    first, since ties keep scikit-learn's order.

    Args:
        X (array-like): Samples, shape (N, D).
        k (int): Neighbours per sample, 1 <= k < N.
        metric (str): Any metric ``NearestNeighbors`` accepts, e.g.
            ``'cosine'`` (1 - cosine similarity). Defaults to
            ``'euclidean'``.
        rows (Sequence[int], optional): Only these samples' neighbours
            (among all N). Defaults to None (every sample).
        index (optional): A neighbour index already fitted on ``X``, with
            scikit-learn's ``kneighbors(X, n_neighbors)`` (a
            ``NEIGHBOR_GRAPHS`` entry). Defaults to None: scikit-learn's
            exact ``NearestNeighbors`` with ``metric``.
        chunk (int): Rows per query, which bounds the distance block in
            memory. Defaults to 2048.
        progress (Callable, optional): Called with the number of rows done
            after each chunk (a progress bar's advance). Defaults to None.

    Returns:
        tuple: ``indices`` (R, k) int64 row positions and ``distances``
        (R, k) float64 (R = N, or the number of ``rows``), nearest first,
        never the sample itself; distances are clipped at 0 (rounding
        gives -1e-8 for identical vectors).

    Raises:
        ValueError: If X is not 2-D or N <= k.

    Examples:
        >>> X = np.array([[0.0], [0.1], [5.0]])
        >>> nearest_neighbors(X, 1)[0].ravel().tolist()
        [1, 0, 1]
    """
    from sklearn.neighbors import NearestNeighbors

    X = _as_2d('X', X)
    check_k(k, len(X))
    k = int(k)
    wanted = np.arange(len(X)) if rows is None else \
        np.asarray(rows, dtype=np.int64).reshape(-1)
    nn = index if index is not None else \
        NearestNeighbors(metric=metric).fit(X)
    indices = np.empty((len(wanted), k), np.int64)
    distances = np.empty((len(wanted), k), np.float64)
    for start in range(0, len(wanted), chunk):
        part = slice(start, start + chunk)
        these = wanted[part]
        dist, idx = nn.kneighbors(X[these], n_neighbors=k + 1)
        is_self = idx == these[:, None]
        keep = ~is_self
        # no self among the k + 1 (duplicates tied before it): drop the last
        keep[~is_self.any(axis=1), -1] = False
        indices[part] = idx[keep].reshape(len(these), k)
        distances[part] = np.maximum(dist[keep].reshape(len(these), k), 0)
        if progress is not None:
            progress(len(these))
    return indices, distances


def knn_accuracy(X, labels, k=10, metric='euclidean', indices=None):
    """Leave-one-out k-NN classification accuracy.

    Each sample is classified by a majority vote of the labels of its ``k``
    nearest *other* samples (:func:`nearest_neighbors`, which excludes each
    point itself, even when duplicates exist). A tie
    between classes goes to the tied class whose nearest member is closest
    to the sample, i.e. the nearest neighbour breaks the tie; equal
    distances keep scikit-learn's neighbour order. Accuracy near 1 means the
    classes are separated in ``X``; chance level is about the largest class
    share (1 / n_classes for balanced classes).

    Args:
        X (array-like): Samples, shape (N, D).
        labels (array-like): Class of each sample, shape (N,).
        k (int): Number of neighbours that vote, 1 <= k < N. Defaults to 10.
        metric (str): Any metric ``sklearn.neighbors.NearestNeighbors``
            accepts, e.g. 'cosine'. Defaults to 'euclidean'.
        indices (array-like, optional): (N, >= k) neighbours already found
            (a run's shared neighbour graph), nearest first, the sample
            itself excluded; their first ``k`` columns vote and nothing is
            searched. Defaults to None.

    Returns:
        float: Fraction of samples whose vote matches their label.

    Raises:
        ValueError: If shapes disagree, X is not 2-D, or N <= k.

    Examples:
        >>> import numpy as np
        >>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
        >>> knn_accuracy(X, [0, 0, 0, 1, 1, 1], k=2)
        1.0
    """
    X = _as_2d('X', X)
    labels = np.asarray(labels)
    if labels.shape != (len(X),):
        raise ValueError(f'labels must have shape ({len(X)},) to match X, '
                         f'got {labels.shape}')
    check_k(k, len(X))
    k = int(k)

    if indices is not None:
        idx = np.asarray(indices)[:, :k]
        if idx.shape != (len(X), k):
            raise ValueError(f'indices must have shape ({len(X)}, >= {k}), '
                             f'got {np.shape(indices)}')
    else:
        idx, _ = nearest_neighbors(X, k, metric=metric)
    votes = labels[idx]  # (N, k), nearest first
    pred = np.empty_like(labels)
    block = max(1, _VOTE_BLOCK_ELEMENTS // (k * k))
    for start in range(0, len(votes), block):
        v = votes[start:start + block]
        # count[i, j]: how many of row i's k votes equal vote j. argmax
        # takes the first maximum, and the votes are sorted nearest first,
        # so a tie goes to the class of the nearest tied neighbour.
        count = (v[:, :, None] == v[:, None, :]).sum(axis=2)
        pred[start:start + block] = v[np.arange(len(v)), count.argmax(axis=1)]
    return float(np.mean(pred == labels))


def trustworthiness(X, Y, n_neighbors=5,
                    max_samples=TRUSTWORTHINESS_MAX_SAMPLES, seed=0):
    """Trustworthiness of embedding ``Y`` of ``X``, on a random subsample.

    ``sklearn.manifold.trustworthiness`` penalises points that are among a
    sample's ``n_neighbors`` nearest in ``Y`` but not in ``X`` (1.0: none).
    It builds N x N distance and rank matrices, so at most ``max_samples``
    rows, drawn without replacement with ``seed``, are used; the same rows
    of ``X`` and ``Y``. On a subsample, neighbours are those within the
    subsample, so the score describes a coarser scale than on all points.

    Args:
        X (array-like): Original samples, shape (N, D).
        Y (array-like): Embedding of the same samples, shape (N, d).
        n_neighbors (int): Neighbourhood size; must be below half the number
            of rows used. Defaults to 5.
        max_samples (int | None): Most rows to use; None uses all.
            Defaults to 5000.
        seed (int): Seed of the subsample. Defaults to 0.

    Returns:
        float: Trustworthiness in [0, 1].

    Raises:
        ValueError: If shapes disagree or there are too few rows for
            ``n_neighbors``.

    Examples:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(100, 8))
        >>> trustworthiness(X, X)
        1.0
    """
    X = _as_2d('X', X)
    Y = _as_2d('Y', Y)
    if len(X) != len(Y):
        raise ValueError(
            f'X and Y must have the same rows, got {len(X)} and {len(Y)}')
    rows = _subsample(len(X), max_samples, seed)
    n_used = len(X) if rows is None else len(rows)
    if int(n_neighbors) != n_neighbors or n_neighbors < 1:
        raise ValueError(
            f'n_neighbors must be a positive integer, got {n_neighbors!r}')
    if n_neighbors >= n_used / 2:
        raise ValueError(
            f'trustworthiness with n_neighbors={n_neighbors} needs more than '
            f'{2 * n_neighbors} samples, got {n_used}; use fewer neighbours '
            'or more samples')
    if rows is not None:
        X, Y = X[rows], Y[rows]
    from sklearn import manifold
    return float(manifold.trustworthiness(X, Y, n_neighbors=int(n_neighbors)))


def continuity(X, Y, n_neighbors=5,
               max_samples=TRUSTWORTHINESS_MAX_SAMPLES, seed=0):
    """Continuity of embedding ``Y`` of ``X``: trustworthiness's dual.

    Penalises points that are among a sample's ``n_neighbors`` nearest in
    ``X`` but not in ``Y``, by their rank in ``Y`` (Venna & Kaski, "Local
    multidimensional scaling", Neural Networks 2006): neighbours the map
    tore apart, where trustworthiness counts false neighbours it made.
    That is ``sklearn.manifold.trustworthiness`` with the two spaces
    swapped, on the same seeded subsample of rows as
    :func:`trustworthiness` (same ``max_samples`` and ``seed``: same rows),
    euclidean in both spaces.

    Args:
        X (array-like): Original samples, shape (N, D).
        Y (array-like): Embedding of the same samples, shape (N, d).
        n_neighbors (int): Neighbourhood size; must be below half the number
            of rows used. Defaults to 5.
        max_samples (int | None): Most rows to use; None uses all.
            Defaults to 5000.
        seed (int): Seed of the subsample. Defaults to 0.

    Returns:
        float: Continuity in [0, 1] (1.0: no neighbour torn apart).

    Examples:
        >>> X = np.random.default_rng(0).normal(size=(100, 8))
        >>> continuity(X, X)
        1.0
    """
    return trustworthiness(Y, X, n_neighbors=n_neighbors,
                           max_samples=max_samples, seed=seed)


#: Random pairs whose distances :func:`distance_spearman` correlates: the
#: rank correlation's standard error is about 1 / sqrt(pairs), 0.003 here.
SPEARMAN_PAIRS = 100_000


def distance_spearman(X, Y, n_pairs: int = SPEARMAN_PAIRS,
                      seed: int = 0) -> Tuple[float, int]:
    """Spearman correlation of pairwise distances, features vs embedding.

    A global figure: whether far apart in ``X`` is far apart in ``Y``.
    Euclidean in both spaces, on ``n_pairs`` pairs of distinct rows drawn
    with ``seed`` (all pairs when there are fewer), so it costs O(pairs),
    whatever N is. ``scipy.stats.spearmanr`` ranks them.

    Args:
        X (array-like): Original samples, shape (N, D).
        Y (array-like): Embedding of the same samples, shape (N, d).
        n_pairs (int): Pairs to draw. Defaults to 100000.
        seed (int): Seed of the pairs. Defaults to 0.

    Returns:
        tuple: ``(rho, pairs)``: the correlation in [-1, 1] and the number
        of pairs it was computed on.

    Raises:
        ValueError: If shapes disagree or N < 3.

    Examples:
        >>> X = np.random.default_rng(0).normal(size=(100, 8))
        >>> rho, pairs = distance_spearman(X, 2 * X)
        >>> round(rho, 6), pairs
        (1.0, 4950)
    """
    from scipy.stats import spearmanr
    from sklearn.metrics.pairwise import paired_distances

    X = _as_2d('X', X)
    Y = _as_2d('Y', Y)
    n = len(X)
    if len(Y) != n:
        raise ValueError(
            f'X and Y must have the same rows, got {n} and {len(Y)}')
    if n < 3:
        raise ValueError(f'distance correlation needs at least 3 samples, '
                         f'got {n}')
    if int(n_pairs) != n_pairs or n_pairs < 2:
        raise ValueError(f'n_pairs must be an integer >= 2, got {n_pairs!r}')
    if n * (n - 1) // 2 <= n_pairs:
        first, second = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        first = rng.integers(0, n, int(n_pairs))
        # a second row other than the first: shifted by 1..n-1
        second = (first + rng.integers(1, n, int(n_pairs))) % n
    rho = spearmanr(paired_distances(X[first], X[second]),
                    paired_distances(Y[first], Y[second])).statistic
    return float(rho), int(len(first))


def _subsample(n_samples, max_samples, seed):
    """Sorted row indices of a seeded subsample, or None to use all rows."""
    if max_samples is not None and max_samples < 1:
        raise ValueError(
            f'max_samples must be >= 1 or None, got {max_samples}')
    if max_samples is None or n_samples <= max_samples:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_samples, size=int(max_samples), replace=False))


def separation_metrics(features, embedding, labels, k=10, seed=0,
                       graph=None):
    """Class separation before and after embedding, and how faithful it is.

    Args:
        features (array-like): High-dimensional features, shape (N, D).
        embedding (array-like): Their 2-D or 3-D embedding, shape (N, d).
        labels (array-like): Class of each sample, shape (N,).
        k (int): Neighbourhood size for both k-NN accuracies and
            trustworthiness, lowered to what N allows (``knn_k`` and
            ``trustworthiness_k`` in the result say what was used).
            Defaults to 10.
        seed (int): Seed of the trustworthiness subsample (at most 5000
            rows). Defaults to 0.
        graph (dict, optional): The run's shared neighbour graph of
            ``features`` (``indices``, ``metric``, ``k``, ``space``); when
            euclidean with at least ``k`` columns, the feature-space k-NN
            accuracy votes with it instead of searching again, and
            ``knn_space_features`` says which space that was (e.g.
            ``'pca50'``). Defaults to None.

    Returns:
        dict: JSON-serialisable plain Python numbers:
            ``knn_accuracy_features`` (float), ``knn_accuracy_embedding``
            (float), ``trustworthiness`` (float) and
            ``n_samples_trustworthiness`` (int, rows it was computed on),
            ``knn_k`` and ``trustworthiness_k`` (int, neighbourhoods used).

    Raises:
        ValueError: If the inputs disagree in length or N < 3.

    Examples:
        >>> from sklearn.datasets import load_digits
        >>> from sklearn.decomposition import PCA
        >>> X, y = load_digits(return_X_y=True)
        >>> m = separation_metrics(X, PCA(2).fit_transform(X), y)
        >>> m['knn_accuracy_features'] > m['knn_accuracy_embedding']
        True
    """
    features = _as_2d('features', features)
    embedding = _as_2d('embedding', embedding)
    if len(features) != len(embedding):
        raise ValueError(f'features and embedding must have the same rows, '
                         f'got {len(features)} and {len(embedding)}')
    n_used = min(len(features), TRUSTWORTHINESS_MAX_SAMPLES)
    if n_used < 3:
        raise ValueError(f'separation metrics need at least 3 samples, got '
                         f'{n_used}')
    # Small runs (a few samples per class) still get metrics: the
    # neighbourhoods shrink to what N allows, and the k used is recorded.
    knn_k = min(k, len(features) - 1)
    trust_k = min(k, (n_used - 1) // 2)
    shared = None
    if graph is not None and graph['metric'] == 'euclidean' and \
            graph['k'] >= knn_k:
        shared = graph['indices']
    # (the k-NN accuracy in feature space is euclidean: a cosine graph, as
    # small runs store, is not reused for it)
    metrics = {
        'knn_accuracy_features': knn_accuracy(features, labels, k=knn_k,
                                              indices=shared),
        'knn_accuracy_embedding': knn_accuracy(embedding, labels, k=knn_k),
        'trustworthiness': trustworthiness(
            features, embedding, n_neighbors=trust_k,
            max_samples=TRUSTWORTHINESS_MAX_SAMPLES, seed=seed),
        'n_samples_trustworthiness': int(n_used),
        'knn_k': int(knn_k),
        'trustworthiness_k': int(trust_k),
    }
    if shared is not None:
        metrics['knn_space_features'] = graph['space']
    return metrics


def _stratified_rows(labels: np.ndarray, max_samples: Optional[int],
                     seed: int) -> np.ndarray:
    """Sorted rows of a per-class subsample keeping every class present."""
    n = len(labels)
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        # Proportional share, but at least two rows so a small class still
        # gets a silhouette (one member alone scores 0 by definition).
        take = min(len(members),
                   max(2, int(round(max_samples * len(members) / n))))
        rows.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(rows))


def _silhouette_samples(X, labels, rows, metric):
    from sklearn.metrics import silhouette_samples
    return silhouette_samples(np.asarray(X)[rows], labels, metric=metric)


def silhouette_by_class(features, embedding, labels,
                        metric: str = 'euclidean',
                        max_samples: Optional[int] = SILHOUETTE_MAX_SAMPLES,
                        seed: int = 0) -> Optional[dict]:
    """Mean silhouette per class, in feature space and in the embedding.

    ``sklearn.metrics.silhouette_samples`` scores each sample from -1
    (closer to another class) to 1 (well inside its own); the mean over a
    class says how compact and apart that class is. Above ``max_samples``
    rows a class-stratified subsample (at least two rows per class) is
    scored, the same rows in both spaces.

    Args:
        features (array-like): Features, shape (N, C).
        embedding (array-like): Their embedding, shape (N, d).
        labels (array-like): Class id of each sample, shape (N,).
        metric (str): Distance in feature space (the embedding always uses
            euclidean, as t-SNE does). Defaults to 'euclidean'.
        max_samples (int | None): Most rows to score; None scores all.
            Defaults to 5000.
        seed (int): Seed of the subsample. Defaults to 0.

    Returns:
        dict | None: None when silhouette is undefined (fewer than two
        classes, or no class with two members); else ``classes`` (ids),
        ``counts`` (rows scored per class), ``features`` and ``embedding``
        (mean per class, lists aligned with ``classes``), ``overall_features``
        and ``overall_embedding`` (mean over all rows scored) and
        ``n_samples``.

    Examples:
        >>> from sklearn.datasets import load_digits
        >>> X, y = load_digits(return_X_y=True)
        >>> s = silhouette_by_class(X, X[:, :2], y)
        >>> len(s['classes']), s['overall_features'] > s['overall_embedding']
        (10, True)
    """
    labels = np.asarray(labels)
    rows = _stratified_rows(labels, max_samples, seed)
    labels = labels[rows]
    classes, counts = np.unique(labels, return_counts=True)
    # silhouette_samples needs 2 <= n_labels <= n_samples - 1.
    if len(classes) < 2 or len(classes) >= len(labels):
        return None
    per_point = {
        'features': _silhouette_samples(features, labels, rows, metric),
        'embedding': _silhouette_samples(embedding, labels, rows,
                                         'euclidean'),
    }
    out = dict(classes=[int(c) for c in classes],
               counts=[int(c) for c in counts], n_samples=int(len(rows)))
    for space, values in per_point.items():
        out[space] = [float(values[labels == c].mean()) for c in classes]
        out[f'overall_{space}'] = float(values.mean())
    return out


def silhouette_score(X, labels, metric: str = 'euclidean',
                     max_samples: Optional[int] = SILHOUETTE_MAX_SAMPLES,
                     seed: int = 0) -> Optional[float]:
    """Mean silhouette of all samples (of the subsample above 5000 rows).

    The same rows and the same number as ``overall_features`` of
    :func:`silhouette_by_class`, so a report and a comparison of the same
    run agree.

    Args:
        X (array-like): Samples, shape (N, D).
        labels (array-like): Class id of each sample, shape (N,).
        metric (str): Distance. Defaults to 'euclidean'.
        max_samples (int | None): Most rows to score (class-stratified);
            None scores all. Defaults to 5000.
        seed (int): Seed of the subsample. Defaults to 0.

    Returns:
        float | None: In [-1, 1]; None when undefined (fewer than two
        classes, or as many classes as rows).

    Examples:
        >>> X = np.array([[0.0], [0.1], [5.0], [5.1]])
        >>> round(silhouette_score(X, [0, 0, 1, 1]), 2)
        0.98
    """
    labels = np.asarray(labels)
    rows = _stratified_rows(labels, max_samples, seed)
    labels = labels[rows]
    n_classes = len(np.unique(labels))
    if n_classes < 2 or n_classes >= len(labels):
        return None
    return float(_silhouette_samples(X, labels, rows, metric).mean())
