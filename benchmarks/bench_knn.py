"""Neighbour-graph builders side by side: seconds and recall@k.

On synthetic clustered 512-d features (20 Gaussian blobs, seeded) reduced
by PCA to 50 dimensions (the space of a run's shared neighbour graph above
``EXACT_MAX_SAMPLES`` points), each ``NEIGHBOR_GRAPHS`` builder finds the
k = 90 (3 x perplexity 30) nearest neighbours of every point, euclidean;
build and query seconds are timed together, and recall@k is checked
against exact search on 1,000 seeded rows (``graph_recall``). Builders
that are not installed (``hnsw`` needs ``hnswlib``) are reported as such.

``hnsw-opentsne`` is hnswlib with the settings of openTSNE's own wrapper
(``ef_construction=200``, query ``ef = 2k``), which the ``hnsw`` builder
used before it got its own (:class:`tsneviz.analysis.graphs.HNSWSearch`).
``--data scale`` takes ``bench_scale.py``'s features instead of blobs.

    OMP_NUM_THREADS=2 python benchmarks/bench_knn.py              # 10k, 100k
    OMP_NUM_THREADS=2 python benchmarks/bench_knn.py --sizes 10000
    OMP_NUM_THREADS=2 python benchmarks/bench_knn.py --data scale \
        --sizes 200000 --builders hnsw-opentsne hnsw
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tsneviz.analysis.graphs import build_graph, graph_recall  # noqa: E402
from tsneviz.reduction.base import pca_reduce  # noqa: E402


def blobs(n, dim=512, centers=20, seed=0):
    """``n`` points around ``centers`` Gaussian blob centres, float32."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(centers, dim))
    labels = rng.integers(centers, size=n)
    X = means[labels] + rng.normal(size=(n, dim))
    return X.astype(np.float32)


def opentsne_hnsw(X, k):
    """The graph as openTSNE's ``HNSW`` wrapper builds it."""
    from openTSNE.nearest_neighbors import HNSW

    indices, _ = HNSW(X, k, metric='euclidean', n_jobs=-1,
                      random_state=0).build()
    return np.asarray(indices)


def features(data, n):
    """PCA-50 of ``n`` rows of blobs or of bench_scale.py's features."""
    if data == 'scale':
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_run import matrix
        return pca_reduce(np.load(matrix(n)[0], mmap_mode='r'), 50)
    return pca_reduce(blobs(n), 50)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[10_000, 100_000])
    parser.add_argument('--k', type=int, default=90)
    parser.add_argument('--builders', nargs='+',
                        default=['exact', 'annoy', 'pynndescent', 'hnsw'],
                        help='NEIGHBOR_GRAPHS keys, or hnsw-opentsne')
    parser.add_argument('--data', choices=['blobs', 'scale'],
                        default='blobs')
    args = parser.parse_args()
    print('| n | builder | seconds | recall@k |')
    print('|---|---|---|---|')
    for n in args.sizes:
        X = features(args.data, n)
        for builder in args.builders:
            load = os.getloadavg()[0]
            try:
                start = time.perf_counter()
                if builder == 'hnsw-opentsne':
                    indices = opentsne_hnsw(X, args.k)
                else:
                    indices, _ = build_graph(X, args.k, 'euclidean',
                                             builder)
                seconds = time.perf_counter() - start
            except ImportError as err:
                print(f'| {n:,} | {builder} | not installed ({err.name}) '
                      '| - |')
                continue
            recall = graph_recall(X, indices, 'euclidean')
            print(f'| {n:,} | {builder} | {seconds:.1f} | {recall:.4f} | '
                  f'<!-- load {load:.2f} -->', flush=True)


if __name__ == '__main__':
    main()
