"""The locality order: graph neighbours at nearby rows, for large fits.

openTSNE's attractive forces read, for every edge of P, the position of
the neighbour. In the data's own order these reads jump across the whole
layout, which at a million points (16 MB of positions) misses the CPU
caches on nearly every edge. A fit on a run's shared graph therefore runs
in the graph's locality order from :data:`LOCALITY_MIN_SAMPLES` points and
puts its result back in the data's order (measured in
benchmarks/README.md, ``## bench_locality.py``).
"""
import numpy as np

# From this many points a fit on a shared graph runs in the graph's
# locality order; below, the layout fits in the caches anyway
# (benchmarks/README.md, ``## bench_locality.py``).
LOCALITY_MIN_SAMPLES = 50_000


def locality_order(indices: np.ndarray) -> np.ndarray:
    """An order of the samples that puts graph neighbours at nearby rows.

    Reverse Cuthill-McKee on the k-NN graph keeps each sample's neighbours
    close in memory (figures: benchmarks/README.md, ``##
    bench_locality.py``).

    Args:
        indices (np.ndarray): (N, k) neighbours of each sample.

    Returns:
        np.ndarray: A permutation of ``range(N)``: row ``i`` of the
        reordered data is row ``order[i]`` of the original.

    Examples:
        >>> chain = np.array([[1], [0], [3], [2]])  # two pairs
        >>> sorted(locality_order(chain).tolist())
        [0, 1, 2, 3]
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    n, k = indices.shape
    adjacency = csr_matrix(
        (np.ones(indices.size, np.int8), indices.ravel(),
         np.arange(0, indices.size + 1, k)), shape=(n, n))
    return np.asarray(reverse_cuthill_mckee(adjacency, symmetric_mode=False))


def _reorder(X, indices, distances, order: np.ndarray):
    """``X`` and its neighbours in ``order`` (a :func:`locality_order`).

    Returns:
        tuple: ``X``, ``indices`` (int64: sample positions in the new
        order) and ``distances``, each with its rows in the new order.
    """
    position = np.empty(len(order), np.int64)
    position[order] = np.arange(len(order))
    return X[order], position[indices[order]], distances[order]
