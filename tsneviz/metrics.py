"""How well classes separate in feature space and in an embedding of it."""

import numpy as np
from sklearn import manifold
from sklearn.neighbors import NearestNeighbors

#: Default cap on rows for trustworthiness, which needs an N x N matrix
#: (5000 rows: a few hundred MB and a few seconds).
TRUSTWORTHINESS_MAX_SAMPLES = 5000

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


def _check_k(k, n_samples):
    """Raise ValueError unless 1 <= k < n_samples."""
    if int(k) != k or k < 1:
        raise ValueError(f'k must be a positive integer, got {k!r}')
    if n_samples <= k:
        raise ValueError(
            f'k-NN with k={k} needs more than k samples, got {n_samples}; '
            'use a smaller k or more samples')


def knn_accuracy(X, labels, k=10, metric='euclidean'):
    """Leave-one-out k-NN classification accuracy.

    Each sample is classified by a majority vote of the labels of its ``k``
    nearest *other* samples (``NearestNeighbors.kneighbors()`` with no
    query excludes each point itself, even when duplicates exist). A tie
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
    _check_k(k, len(X))
    k = int(k)

    _, idx = NearestNeighbors(n_neighbors=k, metric=metric).fit(X).kneighbors()
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
    return float(manifold.trustworthiness(X, Y, n_neighbors=int(n_neighbors)))


def _subsample(n_samples, max_samples, seed):
    """Sorted row indices of a seeded subsample, or None to use all rows."""
    if max_samples is not None and max_samples < 1:
        raise ValueError(
            f'max_samples must be >= 1 or None, got {max_samples}')
    if max_samples is None or n_samples <= max_samples:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_samples, size=int(max_samples), replace=False))


def separation_metrics(features, embedding, labels, k=10, seed=0):
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
    return {
        'knn_accuracy_features': knn_accuracy(features, labels, k=knn_k),
        'knn_accuracy_embedding': knn_accuracy(embedding, labels, k=knn_k),
        'trustworthiness': trustworthiness(
            features, embedding, n_neighbors=trust_k,
            max_samples=TRUSTWORTHINESS_MAX_SAMPLES, seed=seed),
        'n_samples_trustworthiness': int(n_used),
        'knn_k': int(knn_k),
        'trustworthiness_k': int(trust_k),
    }
