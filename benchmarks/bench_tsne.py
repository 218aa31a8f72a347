"""openTSNE (the project's default reducer) against scikit-learn t-SNE.

Measures, in one run and side by side, what ``tsneviz`` users get:

* ``OpenTSNE`` with the project's defaults, built through
  ``tsneviz.reduction.build_tsne('opentsne')``;
* the reference, scikit-learn's Barnes-Hut t-SNE as mmpretrain's tool runs
  it: ``build_tsne('sklearn', pca_dims=None)``, i.e. ``sklearn.manifold.TSNE``
  with scikit-learn's defaults (``max_iter=1000``, ``init='pca'``,
  ``learning_rate='auto'``, ``angle=0.5``) on the raw 512-d features;

at each of ``--sizes`` (default 10k and 30k points), plus openTSNE alone at
``--big`` points (default 100k). Per size it prints the wall time of
``fit_transform`` (PCA, neighbour search, affinities and optimisation; not
the feature generation), the ratio sklearn / openTSNE, trustworthiness
(5 neighbours, on the same seeded 5000-point subsample for both methods:
``tsneviz.metrics.trustworthiness``), its difference, the final KL divergence
(each library's own estimate) and the iterations actually run. Timings are
the median of ``--repeats`` runs (openTSNE) and ``--sklearn-repeats`` runs
(scikit-learn, one by default: it is the slow one); quality figures come from
the first repeat (the runs are seeded, so repeats give the same embedding).
A last check embeds scikit-learn's 8x8 digits (1797 points) with both and
reports 10-NN accuracy in the embedding, i.e. whether digit classes stay
separated.

Features ("deep features"): real penultimate-layer features are large to
ship and slow to compute, so the script synthesises look-alikes, reproducibly
and in about a second per 100k points: 20 classes, each a mixture of 3
anisotropic Gaussian sub-clusters in a 32-d latent space, pushed through a
fixed random 2-layer ReLU MLP (32 -> 256 -> 512, He-initialised, with
biases). Like a classifier's penultimate layer after global pooling, the
result is 512-d, non-negative, sparse-ish, with class clusters, sub-structure
and a curved (non-linear) low-dimensional manifold. The MLP and mixture are
fixed by ``--seed``; the points of a given size are drawn with
``(seed, size)``. Arrays are cached as ``benchmarks/.cache/*.npz`` (not in
git).

Usage (the full benchmark, as run for benchmarks/README.md)::

    flock /tmp/tsneviz-bench.lock python benchmarks/bench_tsne.py

Smoke version (a few seconds)::

    python benchmarks/bench_tsne.py --quick

``--set key=value`` overrides an openTSNE parameter (repeatable), which is
how the defaults were tuned, e.g. ``--set negative_gradient_method=bh``.
"""
import argparse
import ast
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tsneviz.metrics import knn_accuracy, trustworthiness  # noqa: E402
from tsneviz.reduction import build_tsne  # noqa: E402

CACHE_DIR = Path(__file__).resolve().parent / '.cache'
N_CLASSES = 20
LATENT_DIM = 32
HIDDEN_DIM = 256
MODES_PER_CLASS = 3


def make_features(n, dim=512, seed=0, cache_dir=CACHE_DIR):
    """Synthetic penultimate-layer-like features, shape (n, dim), and labels.

    See the module docstring. Cached under ``cache_dir`` (None: no cache).
    """
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f'features_n{n}_d{dim}_s{seed}.npz'
        if path.exists():
            with np.load(path) as data:
                return data['X'], data['y']
    # Fixed "network" and class layout: depend on the seed only.
    model = np.random.default_rng(seed)
    centres = model.normal(scale=0.7, size=(N_CLASSES, LATENT_DIM))
    modes = centres[:, None, :] + model.normal(
        scale=0.9, size=(N_CLASSES, MODES_PER_CLASS, LATENT_DIM))
    # Anisotropic spread per sub-cluster: a random linear map with decaying
    # scales, so each cluster is elongated along a few directions.
    scales = 2.5 * np.linspace(1.0, 0.2, LATENT_DIM)
    shapes = model.normal(size=(N_CLASSES, MODES_PER_CLASS, LATENT_DIM,
                                LATENT_DIM)) / np.sqrt(LATENT_DIM)
    shapes = shapes * scales[None, None, :, None]
    w1 = model.normal(scale=np.sqrt(2 / LATENT_DIM),
                      size=(LATENT_DIM, HIDDEN_DIM))
    b1 = model.normal(scale=0.5, size=HIDDEN_DIM)
    w2 = model.normal(scale=np.sqrt(2 / HIDDEN_DIM), size=(HIDDEN_DIM, dim))
    b2 = model.normal(scale=0.1, size=dim)
    # The points: depend on (seed, n).
    rng = np.random.default_rng([seed, n])
    y = rng.integers(N_CLASSES, size=n)
    mode = rng.integers(MODES_PER_CLASS, size=n)
    X = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 20000):
        sl = slice(start, start + 20000)
        c, m = y[sl], mode[sl]
        noise = rng.normal(size=(len(c), LATENT_DIM))
        z = modes[c, m] + np.einsum('ni,nij->nj', noise, shapes[c, m])
        h = np.maximum(z @ w1 + b1, 0)
        X[sl] = np.maximum(h @ w2 + b2, 0)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f'.{os.getpid()}.tmp.npz')
        np.savez(tmp, X=X, y=y)
        os.replace(tmp, path)
    return X, y


def run_once(backend, X, params):
    """Fit one reducer; return (embedding, seconds, reducer)."""
    reducer = build_tsne(backend, **params)
    start = time.perf_counter()
    Y = reducer.fit_transform(X)
    return Y, time.perf_counter() - start, reducer


def measure(backend, X, y, params, repeats, trust_samples):
    """Median time over ``repeats`` and quality of the first run."""
    times, first = [], None
    for _ in range(repeats):
        Y, seconds, reducer = run_once(backend, X, params)
        times.append(seconds)
        if first is None:
            first = (Y, reducer)
    Y, reducer = first
    return dict(
        time=statistics.median(times), times=times,
        trust=trustworthiness(X, Y, n_neighbors=5, max_samples=trust_samples,
                              seed=0),
        knn=knn_accuracy(Y, y, k=10),
        kl=reducer.kl_divergence_, n_iter=reducer.n_iter_,
        gradient=getattr(reducer, 'gradient_method_', 'bh'))


def parse_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=None,
                        help='sizes for the side-by-side comparison '
                        '(default 10000 30000; --quick: 1000)')
    parser.add_argument('--big', type=int, default=None,
                        help='size for openTSNE alone, 0 to skip '
                        '(default 100000; --quick: 0)')
    parser.add_argument('--dim', type=int, default=512,
                        help='feature dimension (default 512)')
    parser.add_argument('--repeats', type=int, default=None,
                        help='openTSNE runs per size, median time '
                        '(default 3; --quick: 1)')
    parser.add_argument('--big-repeats', type=int, default=1,
                        help='openTSNE runs at --big (default 1)')
    parser.add_argument('--sklearn-repeats', type=int, default=1,
                        help='scikit-learn runs per size (default 1)')
    parser.add_argument('--skip-sklearn', action='store_true',
                        help='time openTSNE only')
    parser.add_argument('--skip-digits', action='store_true',
                        help='skip the digits separation check')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: 1000 points, no 100k, 1 repeat')
    parser.add_argument('--set', action='append', default=[],
                        metavar='KEY=VALUE', help='override an openTSNE '
                        'parameter, e.g. --set negative_gradient_method=bh')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the synthetic features (default 0)')
    parser.add_argument('--trust-samples', type=int, default=5000,
                        help='subsample for trustworthiness (default 5000)')
    parser.add_argument('--no-cache', action='store_true',
                        help='do not read or write benchmarks/.cache')
    parser.add_argument('--json', type=Path, default=None,
                        help='also write all figures to this JSON file')
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [1000] if args.quick else [10000, 30000]
    if args.big is None:
        args.big = 0 if args.quick else 100000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition('=')
        if not sep:
            parser.error(f'--set expects KEY=VALUE, got {item!r}')
        overrides[key] = parse_value(value)
    args.overrides = overrides
    return args


def fmt(value, spec):
    return '-' if value is None else format(value, spec)


def main(argv=None):
    args = parse_args(argv)
    cache = None if args.no_cache else CACHE_DIR
    open_params = dict(args.overrides)
    sk_params = dict(pca_dims=None)
    print(f'bench_tsne: {os.cpu_count()} CPUs, dim={args.dim}, '
          f'openTSNE repeats={args.repeats}, sklearn '
          f'repeats={args.sklearn_repeats}, openTSNE params '
          f'{build_tsne("opentsne", **open_params).params}', flush=True)
    rows = []
    for n in list(args.sizes) + ([args.big] if args.big else []):
        side_by_side = n in args.sizes and not args.skip_sklearn
        X, y = make_features(n, args.dim, args.seed, cache)
        repeats = args.repeats if n in args.sizes else args.big_repeats
        row = dict(n=n, load_before=os.getloadavg()[0],
                   opentsne=measure('opentsne', X, y, open_params, repeats,
                                    args.trust_samples))
        if side_by_side:
            row['sklearn'] = measure('sklearn', X, y, sk_params,
                                     args.sklearn_repeats, args.trust_samples)
        rows.append(row)
        o, s = row['opentsne'], row.get('sklearn')
        print(f'  n={n}: openTSNE {o["time"]:.1f} s '
              f'{[round(t, 1) for t in o["times"]]} ({o["gradient"]}, '
              f'{o["n_iter"]} it, trust {o["trust"]:.4f}, KL {o["kl"]:.3f})'
              + (f', sklearn {s["time"]:.1f} s ({s["n_iter"]} it, trust '
                 f'{s["trust"]:.4f}, KL {s["kl"]:.3f})' if s else '')
              + f'; 1-min load average before: {row["load_before"]:.2f}',
              flush=True)

    print()
    header = ('n', 'sklearn s', 'openTSNE s', 'speed-up', 'trust sk',
              'trust oT', 'diff', 'KL sk', 'KL oT', 'iter sk', 'iter oT',
              '10NN sk', '10NN oT')
    print(' | '.join(header))
    for row in rows:
        o, s = row['opentsne'], row.get('sklearn') or {}
        ratio = s['time'] / o['time'] if s else None
        diff = o['trust'] - s['trust'] if s else None
        print(' | '.join([
            str(row['n']), fmt(s.get('time'), '.1f'), fmt(o['time'], '.1f'),
            fmt(ratio, '.1f'), fmt(s.get('trust'), '.4f'),
            fmt(o['trust'], '.4f'), fmt(diff, '+.4f'), fmt(s.get('kl'), '.3f'),
            fmt(o['kl'], '.3f'), fmt(s.get('n_iter'), 'd'),
            fmt(o['n_iter'], 'd'), fmt(s.get('knn'), '.3f'),
            fmt(o['knn'], '.3f')]))

    digits = None
    if not args.skip_digits:
        from sklearn.datasets import load_digits
        Xd, yd = load_digits(return_X_y=True)
        digits = dict(opentsne=measure('opentsne', Xd, yd, open_params, 1,
                                       args.trust_samples))
        if not args.skip_sklearn:
            digits['sklearn'] = measure('sklearn', Xd, yd, sk_params, 1,
                                        args.trust_samples)
        print('\ndigits (1797 x 64): ' + ', '.join(
            f'{name} 10-NN acc {d["knn"]:.3f}, trust {d["trust"]:.4f}, '
            f'{d["time"]:.1f} s' for name, d in digits.items()))

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(
            dict(rows=rows, digits=digits, overrides=args.overrides,
                 cpus=os.cpu_count()), indent=1, default=str))
    return rows


if __name__ == '__main__':
    main()
