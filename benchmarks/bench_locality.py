"""openTSNE's attractive forces in the data's order and in locality order.

On the PCA-50 of ``bench_scale.py``'s features, the run's neighbour graph
(``shared_graph``: exact below 200k points, hnsw above; k = 90) gives
openTSNE's P (perplexity 30). One pass of the attractive forces, the part
of each t-SNE iteration that reads a neighbour's position for every edge
of P, is timed on a random layout (best of 3) with the rows in the data's
order and in :func:`tsneviz.reduction.tsne.locality_order`, side by side.

    OMP_NUM_THREADS=2 python benchmarks/bench_locality.py --sizes 100000
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_run import matrix  # noqa: E402

from tsneviz.analysis.graphs import graph_space, shared_graph  # noqa: E402
from tsneviz.reduction.tsne import _reorder, locality_order  # noqa: E402


def attraction_seconds(P, layout, repeats=3):
    """Best of ``repeats`` passes of openTSNE's attractive forces."""
    from openTSNE import _tsne

    gradient = np.zeros_like(layout)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        _tsne.estimate_positive_gradient_nn(
            P.indices, P.indptr, P.data, layout, layout, gradient, 1.0,
            num_threads=2, should_eval_error=False)
        best = min(best, time.perf_counter() - start)
    return best


def affinities(indices, distances):
    """openTSNE's P from a neighbour graph."""
    from openTSNE.affinity import PerplexityBasedNN
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    return PerplexityBasedNN(perplexity=30, n_jobs=2, knn_index=(
        PrecomputedNeighbors(np.asarray(indices, np.int64),
                             np.asarray(distances, np.float64)))).P


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[100_000, 1_000_000])
    args = parser.parse_args()
    print('| n | graph | order (s) | data order (s) | locality order (s) '
          '| data / locality |')
    print('|---|---|---:|---:|---:|---:|')
    for n in args.sizes:
        space = graph_space(np.load(matrix(n)[0], mmap_mode='r'))
        graph = shared_graph(space[0], 90, space=space)
        layout = np.random.default_rng(0).normal(0, 100, (n, 2))
        plain = attraction_seconds(
            affinities(graph['indices'], graph['distances']), layout)
        start = time.perf_counter()
        order = locality_order(graph['indices'])
        ordered = time.perf_counter() - start
        _, indices, distances = _reorder(space[0], graph['indices'],
                                         graph['distances'], order)
        local = attraction_seconds(affinities(indices, distances),
                                   np.ascontiguousarray(layout[order]))
        print(f'| {n:,} | {graph["builder"]}, recall {graph["recall"]:.3f} '
              f'| {ordered:.1f} | {plain:.3f} | {local:.3f} '
              f'| {plain / local:.2f}x |', flush=True)


if __name__ == '__main__':
    main()
