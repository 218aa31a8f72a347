"""The clusters step at scale: the exact paths against the large-N ones.

On synthetic 512-d blobs (``--centers`` Gaussian blobs, seeded, float32,
the shape of a model's features), each method clusters the features as
the clusters step does (``cluster_features``: PCA to 50 dimensions, then
the method), twice: "before" with ``large_n=None`` (the PCA fitted on all
rows in float64, Lloyd's k-means with 10 starts, HDBSCAN on everything:
what the step did before the large-N paths) and "after" with the default
``large_n`` (``LARGE_N``: PCA fitted on a sample, MiniBatchKMeans, HDBSCAN
on a sample in 10 dimensions). Seconds (PCA + fit), the ratio, the
adjusted Rand index against the blobs are printed side by side, with the
load average. "before" is skipped above ``--before-max`` samples per
method (HDBSCAN over all 50-d samples grows much faster than N).

    OMP_NUM_THREADS=2 python benchmarks/bench_clusters.py   # 100k and 1M
    OMP_NUM_THREADS=2 python benchmarks/bench_clusters.py --sizes 20000 \\
        --methods kmeans hdbscan
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

from tsneviz.analysis.clustering import LARGE_N, cluster_features  # noqa: E402

# What "before" can still do in reasonable time, per method.
BEFORE_MAX = dict(kmeans=1_000_000, hdbscan=20_000)


def blobs(n, dim=512, centers=10, seed=0, chunk=100_000):
    """``n`` float32 points around ``centers`` blob centres, and labels.

    Made in chunks, so 1M x 512 never exists in float64 (4 GB).
    """
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(centers, dim)).astype(np.float32)
    labels = rng.integers(centers, size=n)
    X = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        X[start:stop] = means[labels[start:stop]] + rng.standard_normal(
            (stop - start, dim), dtype=np.float32)
    return X, labels


def timed(X, method, centers, large_n):
    """``(seconds, timings, ids)`` of one clustering of ``X``."""
    params = dict(min_cluster_size=100) if method == 'hdbscan' else \
        dict(n_clusters=centers)
    timings = {}
    start = time.perf_counter()
    ids = cluster_features(X, method, large_n=large_n, timings=timings,
                           **params)
    return time.perf_counter() - start, timings, ids


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[100_000, 1_000_000])
    parser.add_argument('--methods', nargs='+', default=['kmeans'],
                        choices=['kmeans', 'hdbscan'])
    parser.add_argument('--centers', type=int, default=10)
    parser.add_argument('--before-max', type=int, default=None,
                        help='skip "before" above this many samples '
                        '(default: per method, %s)' % BEFORE_MAX)
    args = parser.parse_args()
    from sklearn.metrics import adjusted_rand_score

    print(f'large_n = {LARGE_N:,}; load average at start '
          f'{os.getloadavg()[0]:.1f}; {os.cpu_count()} cores')
    print('| n | method | before s (pca + fit) | after s (pca + fit) | '
          'ratio | strategy | ARI before | ARI after | load |')
    print('|---|---|---|---|---|---|---|---|---|')
    for n in args.sizes:
        X, y = blobs(n, centers=args.centers)
        for method in args.methods:
            limit = args.before_max or BEFORE_MAX[method]
            before = None
            if n <= limit:
                before = timed(X, method, args.centers, None)
            after = timed(X, method, args.centers, LARGE_N)
            load = os.getloadavg()[0]

            def cell(result):
                if result is None:
                    return 'skipped', '-'
                seconds, t, ids = result
                return (f'{seconds:.1f} ({t["pca"]:.1f} + {t["fit"]:.1f})',
                        f'{adjusted_rand_score(y, ids):.3f}')

            b, b_ari = cell(before)
            a, a_ari = cell(after)
            ratio = f'{before[0] / after[0]:.1f}x' if before else '-'
            print(f'| {n:,} | {method} | {b} | {a} | {ratio} | '
                  f'{after[1]["strategy"]} | {b_ari} | {a_ari} | '
                  f'{load:.1f} |', flush=True)


if __name__ == '__main__':
    main()
