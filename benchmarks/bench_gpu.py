"""GPU t-SNE backends against openTSNE, side by side in one run.

On synthetic clustered 512-d features (``--centers`` Gaussian blobs,
seeded, float32), every GPU backend that imports here (cuML, tsne-cuda,
torchdr; ``--backends`` to choose) and openTSNE embed the same matrix
with the same flags (``--n-iter``, perplexity 30, PCA to 50 dimensions
first, as tsneviz runs them). Printed per size: seconds, the ratio to
openTSNE, the 10-NN accuracy of the map against the blobs on up to
10,000 seeded points (chance: 1 / centers), the load average, and the
published figures to beat: cuML 1.3M points in 37 s on an A100, tsne-cuda
60k in 7 s.

Without CUDA (no GPU here) the GPU-only backends are reported as not
available and torchdr runs on the CPU at the small default size, so the
script itself is tested (tests/test_reduction/test_bench_gpu.py).

    python benchmarks/bench_gpu.py                       # GPU: 60k, 1.3M
    python benchmarks/bench_gpu.py --sizes 60000 --backends cuml torchdr
    python benchmarks/bench_gpu.py --sizes 500 --n-iter 250   # any CPU
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

# the same seeded blobs as the clusters benchmark (this folder is on
# sys.path when a script of it runs)
from bench_clusters import blobs  # noqa: E402

from tsneviz.errors import UserError  # noqa: E402
from tsneviz.metrics import knn_accuracy  # noqa: E402
from tsneviz.reduction import build_tsne  # noqa: E402
from tsneviz.reduction.tsne import GPU_PREFERENCE  # noqa: E402

#: Published figures: (points, seconds, where).
TARGETS = {
    'cuml': (1_300_000, 37.0, 'A100, RAPIDS cuML blog'),
    'tsnecuda': (60_000, 7.0, 'tsne-cuda paper, MNIST'),
}
#: Points on which the 10-NN accuracy of a map is measured.
ACCURACY_SAMPLE = 10_000
#: Above this many points torchdr's all-pairs repulsion ('torch') needs
#: more than about 40 GB of GPU memory; keops or faiss are used instead.
TORCHDR_DENSE_MAX = 50_000


def cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def torchdr_memory_backend(n: int) -> str:
    """torchdr's ``backend`` for ``n`` points (see TORCHDR_DENSE_MAX)."""
    import importlib.util
    if n <= TORCHDR_DENSE_MAX:
        return 'torch'
    for name, module in (('keops', 'pykeops'), ('faiss', 'faiss')):
        if importlib.util.find_spec(module) is not None:
            return name
    return 'torch'


def fit(backend, X, args):
    """``(seconds, coords, note)``; coords None when it could not run."""
    params = dict(n_iter=args.n_iter, perplexity=args.perplexity,
                  n_jobs=args.n_jobs, seed=0)
    note = ''
    if backend == 'torchdr':
        params['torchdr_backend'] = torchdr_memory_backend(len(X))
        note = f"{params['torchdr_backend']}"
    params = {k: v for k, v in params.items() if v is not None}
    try:
        reducer = build_tsne(backend, **params)
        start = time.perf_counter()
        coords = reducer.fit_transform(X)
        seconds = time.perf_counter() - start
    except UserError as err:
        return None, None, f'not available: {err}'
    except Exception as err:  # out of GPU memory, a driver error, ...
        return None, None, f'failed: {type(err).__name__}: {err}'[:200]
    device = getattr(reducer, 'device_', 'gpu' if backend in TARGETS
                     else 'cpu')
    return seconds, coords, ', '.join(filter(None, [device, note]))


def accuracy(coords, labels):
    """10-NN accuracy of the map on up to ACCURACY_SAMPLE seeded points."""
    keep = np.arange(len(coords))
    if len(keep) > ACCURACY_SAMPLE:
        keep = np.sort(np.random.default_rng(0).choice(
            len(keep), ACCURACY_SAMPLE, replace=False))
    return knn_accuracy(coords[keep], labels[keep])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    gpu = cuda_available()
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[60_000, 1_300_000] if gpu else [1000])
    parser.add_argument('--backends', nargs='+', choices=GPU_PREFERENCE,
                        default=list(GPU_PREFERENCE))
    parser.add_argument('--n-iter', type=int, default=750)
    parser.add_argument('--perplexity', type=float, default=30.0)
    parser.add_argument('--centers', type=int, default=10)
    parser.add_argument('--n-jobs', type=int, default=None,
                        help='threads of openTSNE and of torchdr on the '
                        'CPU (default: all)')
    parser.add_argument('--opentsne-max', type=int, default=None,
                        help='skip openTSNE above this many points')
    args = parser.parse_args(argv)

    print(f'CUDA available: {gpu}; {os.cpu_count()} cores; load average '
          f'{os.getloadavg()[0]:.1f}; {args.n_iter} iterations, '
          f'perplexity {args.perplexity:g}')
    print('| n | backend | device | seconds | openTSNE / backend | '
          '10-NN acc. | load | figure to beat |')
    print('|---|---|---|---|---|---|---|---|')
    for n in args.sizes:
        X, labels = blobs(n, centers=args.centers)
        rows = []
        if args.opentsne_max is None or n <= args.opentsne_max:
            rows.append(('opentsne', *fit('opentsne', X, args)))
        else:
            rows.append(('opentsne', None, None, 'skipped (--opentsne-max)'))
        for backend in args.backends:
            if backend != 'torchdr' and not gpu:
                rows.append((backend, None, None, 'not available: no CUDA'))
                continue
            rows.append((backend, *fit(backend, X, args)))
        reference = rows[0][1]
        for backend, seconds, coords, note in rows:
            target = TARGETS.get(backend)
            beat = f'{target[0]:,} in {target[1]:g} s ({target[2]})' \
                if target else '-'
            if seconds is None:
                print(f'| {n:,} | {backend} | {note} | - | - | - | - | '
                      f'{beat} |')
                continue
            ratio = f'{reference / seconds:.2f}x' if reference else '-'
            print(f'| {n:,} | {backend} | {note} | {seconds:.1f} | {ratio} '
                  f'| {accuracy(coords, labels):.3f} | '
                  f'{os.getloadavg()[0]:.1f} | {beat} |', flush=True)


if __name__ == '__main__':
    main()
