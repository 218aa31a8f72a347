"""What changed per sample between checkpoints: its place and neighbours.

- :func:`movement`: how far each sample moved on maps drawn in one frame,
  checkpoint to checkpoint and in total;
- :func:`neighbourhood_overlap`: the share of a sample's k nearest
  neighbours in feature space that two checkpoints agree on: a sample
  whose overlap is low was re-learnt, whatever the maps show.
"""
import numpy as np


def movement(coords: np.ndarray) -> dict:
    """Distances moved by every sample across maps in one frame.

    Args:
        coords (np.ndarray): (T, N, d) maps, T >= 2, in one frame.

    Returns:
        dict: ``steps`` (T - 1, N): from each checkpoint to the next;
        ``total`` (N,): their sum (the path's length); ``net`` (N,): from
        the first map to the last.

    Examples:
        >>> maps = np.array([[[0.0, 0.0]], [[3.0, 4.0]], [[0.0, 0.0]]])
        >>> out = movement(maps)
        >>> out['steps'].ravel().tolist(), out['total'].tolist()
        ([5.0, 5.0], [10.0])
    """
    coords = np.asarray(coords, dtype=np.float64)
    steps = np.linalg.norm(np.diff(coords, axis=0), axis=2)
    return dict(steps=steps, total=steps.sum(axis=0),
                net=np.linalg.norm(coords[-1] - coords[0], axis=1))


def neighbourhood_overlap(features_a: np.ndarray, features_b: np.ndarray,
                          k: int = 10, seed: int = 0) -> np.ndarray:
    """Share of each sample's k nearest neighbours found in both spaces.

    Each space is searched as the run's own neighbour graph is
    (:func:`tsneviz.analysis.graphs.graph_space`: cosine on the features
    for small runs, euclidean on 50 PCA components for large ones), exactly.

    Args:
        features_a (np.ndarray): (N, C) features at one checkpoint.
        features_b (np.ndarray): (N, C') the same samples at another.
        k (int): Neighbours per sample (lowered to N - 1). Defaults to 10.
        seed (int): Seed of the PCA of large runs. Defaults to 0.

    Returns:
        np.ndarray: (N,) |kNN_a & kNN_b| / k, in [0, 1]; 1 for a sample
        whose neighbours did not change.

    Examples:
        >>> X = np.random.default_rng(0).normal(size=(30, 5))
        >>> float(neighbourhood_overlap(X, 2 * X, k=5).min())
        1.0
    """
    from tsneviz.analysis.graphs import build_graph, graph_space

    k = int(min(k, len(features_a) - 1))
    found = []
    for features in (features_a, features_b):
        X, _, metric = graph_space(np.asarray(features), seed)
        found.append(build_graph(X, k, metric, builder='exact')[0])
    both = np.array([np.intersect1d(a, b, assume_unique=True).size
                     for a, b in zip(*found)])
    return both / float(k)
