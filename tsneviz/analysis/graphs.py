"""Neighbour graphs: how the k nearest neighbours in feature space are found.

Each entry of :data:`tsneviz.registry.NEIGHBOR_GRAPHS` is a builder
``fn(features, metric)`` that returns a fitted index with scikit-learn's
``kneighbors(X, n_neighbors) -> (distances, indices)``. ``exact`` is the
brute-force search every run uses; an approximate one for large runs
registers under its own name.
"""
import numpy as np

from tsneviz.registry import NEIGHBOR_GRAPHS

#: The distances a neighbour graph is asked for.
METRICS = ('cosine', 'euclidean')


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
