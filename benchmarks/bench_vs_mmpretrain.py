"""End-to-end benchmark: tsneviz's ``tools/vis_tsne.py`` vs mmpretrain's.

Both tools run as whole processes on the same config, checkpoint and
samples, alternating reference / ours (A B A B ...), and the script prints

* the wall-clock time of every run, the ratio reference / ours of each pair
  and the median ratio (target: at least 2.5x);
* the phase timings of our runs (``run.json`` ``timings``);
* parity: the largest absolute difference between the reference's
  ``feat_3.npy`` and ours (must be within 1e-5; the script exits 1 if not);
* a cache run: ours again, without ``--no-cache`` and with another
  perplexity, must reuse the saved features and cost no more than its t-SNE
  plus 3 s.

Data: 10 classes x 1000 images of 32x32 pixels made from scikit-learn's
bundled digits (seeded random rotation, scale, shift and noise of the 1797
digits), written as an mmpretrain ``CustomDataset`` folder under
``benchmarks/.cache/vs_mmpretrain/`` together with a small config that inherits
``configs/digits/resnet18-slim_digits.py`` and points
``test_dataloader.dataset`` at it. The model is the digits demo checkpoint.
Ours runs with every default analysis step (views, neighbours, clusters,
label issues, report and the explorer with its thumbnails), which the
reference does not have; ``--no-analysis`` stops ours after the plot too.

The reference is mmpretrain's ``tools/visualization/vis_tsne.py`` from the
installed wheel, run through ``benchmarks/_reference_shim.py`` (two run-time
patches for today's scikit-learn and torch; see there).

Usage::

    python benchmarks/bench_vs_mmpretrain.py            # 3 pairs, 10 x 1000
    python benchmarks/bench_vs_mmpretrain.py --quick    # 1 pair, 10 x 20
    python benchmarks/bench_vs_mmpretrain.py --lock /tmp/tsneviz-bench.lock

With ``--lock`` each pair (and the cache run) holds an exclusive
``flock`` on that file, so other benchmarks on the machine do not overlap
with a measurement.
"""
import argparse
import contextlib
import glob
import json
import os
import os.path as osp
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
BASE_CONFIG = osp.join(ROOT, 'configs', 'digits', 'resnet18-slim_digits.py')
CHECKPOINT = osp.join(ROOT, 'configs', 'digits', 'resnet18-slim_digits.pth')
OURS = osp.join(ROOT, 'tools', 'vis_tsne.py')
SHIM = osp.join(HERE, '_reference_shim.py')
FEATURE = 'feat_3.npy'  # backbone out_indices=(3,), default stage neck

PARITY_TOL = 1e-5
TARGET_SPEEDUP = 2.5
TARGET_CACHE_OVERHEAD = 3.0

# Bump when the generated images would change for the same arguments.
_DATA_FORMAT = 1


def reference_script() -> str:
    import mmpretrain
    path = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools',
                    'visualization', 'vis_tsne.py')
    if not osp.isfile(path):
        sys.exit(f'error: mmpretrain\'s vis_tsne.py not found at {path}')
    return path


# ----------------------------------------------------------------- data
def make_dataset(root: str, per_class: int, seed: int = 0,
                 size: int = 32) -> str:
    """Write ``root/val/<class>/<k>.png``, 10 classes x ``per_class``.

    Image ``k`` of class ``c`` depends only on ``(seed, c, k)``, so a
    smaller set is the head of a larger one. Idempotent: a folder whose
    marker matches is kept as it is.
    """
    settings = dict(format=_DATA_FORMAT, per_class=per_class, seed=seed,
                    size=size)
    marker = osp.join(root, '.complete')
    try:
        with open(marker) as f:
            if json.load(f) == settings:
                return root
    except (OSError, ValueError):
        pass

    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.images, digits.target
    if osp.exists(root):
        shutil.rmtree(root)
    staging = root + '.tmp'
    shutil.rmtree(staging, ignore_errors=True)
    for cls in range(10):
        folder = osp.join(staging, 'val', str(cls))
        os.makedirs(folder)
        members = np.flatnonzero(labels == cls)
        for k in range(per_class):
            rng = np.random.default_rng([seed, cls, k])
            base = images[members[rng.integers(len(members))]]
            img = Image.fromarray(
                np.round(base * (255.0 / 16.0)).astype(np.uint8), 'L')
            img = img.resize((size, size), Image.BILINEAR)
            # Random similarity transform about the centre, then noise.
            angle = rng.uniform(-12, 12)
            scale = rng.uniform(0.85, 1.1)
            shift = rng.uniform(-3, 3, size=2)
            img = img.rotate(angle, resample=Image.BILINEAR)
            w = max(1, int(round(size * scale)))
            img = img.resize((w, w), Image.BILINEAR)
            canvas = Image.new('L', (size, size), 0)
            off = (size - w) // 2
            canvas.paste(img, (off + int(round(shift[0])),
                               off + int(round(shift[1]))))
            pixels = np.asarray(canvas, dtype=np.float32)
            pixels += rng.normal(0, 10, pixels.shape)
            pixels = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, 'L').convert('RGB').save(
                osp.join(folder, f'{k:05d}.png'))
    os.replace(staging, root)
    with open(marker, 'w') as f:
        json.dump(settings, f)
    return root


def write_config(cache: str, data_root: str) -> str:
    """A config inheriting the digits demo, reading ``data_root/val``."""
    path = osp.join(cache, f'bench_{osp.basename(data_root)}.py')
    text = (
        '# Written by benchmarks/bench_vs_mmpretrain.py; do not edit.\n'
        f'_base_ = [{BASE_CONFIG!r}]\n'
        'test_dataloader = dict(\n'
        f'    dataset=dict(data_root={data_root!r}, data_prefix=\'val\'))\n')
    old = None
    if osp.isfile(path):
        with open(path) as f:
            old = f.read()
    if old != text:
        with open(path, 'w') as f:
            f.write(text)
    return path


# ----------------------------------------------------------------- runs
@contextlib.contextmanager
def exclusive(lock_path):
    if not lock_path:
        yield
        return
    import fcntl
    with open(lock_path, 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _env():
    env = dict(os.environ)
    env.setdefault('MPLBACKEND', 'Agg')
    env.pop('PYTHONPROFILEIMPORTTIME', None)
    return env


def _new_run_dir(work_dir: str, before: set) -> str:
    runs = sorted(set(glob.glob(osp.join(work_dir, 'tsne_*'))) - before,
                  key=osp.getmtime)
    if not runs:
        raise RuntimeError(f'no new run directory in {work_dir}')
    return runs[-1]


def timed(cmd, work_dir: str, log: str) -> tuple:
    """Run ``cmd``; return (wall seconds, the new run directory)."""
    os.makedirs(work_dir, exist_ok=True)
    before = set(glob.glob(osp.join(work_dir, 'tsne_*')))
    with open(log, 'w') as out:
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                              env=_env(), cwd=ROOT)
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise SystemExit(f'error: {cmd[1]} exited {proc.returncode}; log '
                         f'{log}:\n{tail}')
    return wall, _new_run_dir(work_dir, before)


def run_reference(config, work_dir, args, log):
    cmd = [sys.executable, SHIM, '--trusted-checkpoint', CHECKPOINT,
           reference_script(), '--', config, '--checkpoint', CHECKPOINT,
           '--max-num-class', '10', '--max-num-samples',
           str(args.per_class), '--work-dir', work_dir]
    return timed(cmd, work_dir, log)


def run_ours(config, work_dir, args, log, extra=(), analysis=True):
    cmd = [sys.executable, OURS, config, '--checkpoint', CHECKPOINT,
           '--sampling', 'first', '--max-num-class', '10',
           '--max-num-samples', str(args.per_class), '--work-dir', work_dir,
           *extra]
    if not analysis:
        # the reference stops after the plot; --no-analysis compares only
        # that work (views, clusters, report and explorer come after)
        cmd.append('--analysis')
    wall, run_dir = timed(cmd, work_dir, log)
    with open(osp.join(run_dir, 'run.json')) as f:
        manifest = json.load(f)
    for step, outcome in (manifest.get('analysis') or {}).items():
        if outcome.get('status') != 'ok':
            raise SystemExit(f'error: analysis step {step} ended '
                             f'{outcome.get("status")}; log {log}')
        manifest['timings'][f'analysis: {step}'] = outcome.get('seconds', 0)
    return wall, run_dir, manifest


# ----------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='smoke test: 10 x 20 samples, 1 pair, targets '
                        'reported but not enforced')
    parser.add_argument('--pairs', type=int,
                        help='reference/ours pairs (default 3; 1 in --quick)')
    parser.add_argument('--per-class', type=int,
                        help='samples per class (default 1000; 20 in '
                        '--quick)')
    parser.add_argument('--cache-dir',
                        default=osp.join(HERE, '.cache', 'vs_mmpretrain'),
                        help='data, config and runs (default: %(default)s)')
    parser.add_argument('--lock', help='flock this file around each pair')
    parser.add_argument('--no-analysis', action='store_true',
                        help='ours without the analysis steps (default: '
                        'every default step, explorer included)')
    parser.add_argument('--keep-runs', action='store_true',
                        help='keep the run directories of earlier '
                        'invocations (default: start from an empty runs/)')
    args = parser.parse_args(argv)
    args.pairs = args.pairs or (1 if args.quick else 3)
    args.per_class = args.per_class or (20 if args.quick else 1000)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    cache = osp.abspath(args.cache_dir)
    os.makedirs(cache, exist_ok=True)
    t0 = time.perf_counter()
    data_root = make_dataset(osp.join(cache, f'digits-aug-{args.per_class}'),
                             args.per_class)
    config = write_config(cache, data_root)
    print(f'data:   {data_root} (10 x {args.per_class} images, '
          f'{time.perf_counter() - t0:.1f} s to check/make)')
    print(f'config: {osp.relpath(config, ROOT)}')
    print(f'machine: {os.cpu_count()} cores, python {sys.version.split()[0]}')

    runs = osp.join(cache, 'runs', f'n{args.per_class}')
    if not args.keep_runs:
        shutil.rmtree(runs, ignore_errors=True)
    ref_dir, ours_dir = osp.join(runs, 'reference'), osp.join(runs, 'ours')
    logs = osp.join(runs, 'logs')
    os.makedirs(logs, exist_ok=True)

    rows, ours_manifests, diffs = [], [], []
    for i in range(args.pairs):
        with exclusive(args.lock):
            a, a_dir = run_reference(config, ref_dir, args,
                                     osp.join(logs, f'reference_{i}.log'))
            b, b_dir, manifest = run_ours(config, ours_dir, args,
                                          osp.join(logs, f'ours_{i}.log'),
                                          ['--no-cache'],
                                          analysis=not args.no_analysis)
        ref_feat = np.load(osp.join(a_dir, FEATURE))
        our_feat = np.load(osp.join(b_dir, FEATURE))
        if ref_feat.shape != our_feat.shape:
            diff = float('inf')
        else:
            diff = float(np.abs(ref_feat.astype(np.float64) -
                                our_feat.astype(np.float64)).max())
        diffs.append(diff)
        ours_manifests.append(manifest)
        rows.append((a, b, a / b))
        print(f'pair {i + 1}: reference {a:6.2f} s   ours {b:6.2f} s   '
              f'ratio {a / b:5.2f}x   {FEATURE} max|diff| {diff:.2e} '
              f'(shapes {ref_feat.shape} / {our_feat.shape})', flush=True)

    ratios = [r for _, _, r in rows]
    median = statistics.median(ratios)
    print('\nend to end (wall clock of the whole process, seconds)')
    print('| pair | reference | ours | reference / ours |')
    print('|---:|---:|---:|---:|')
    for i, (a, b, r) in enumerate(rows, 1):
        print(f'| {i} | {a:.2f} | {b:.2f} | {r:.2f}x |')
    print(f'| median | {statistics.median(r[0] for r in rows):.2f} | '
          f'{statistics.median(r[1] for r in rows):.2f} | {median:.2f}x |')

    phases = {}
    for m in ours_manifests:
        for k, v in m['timings'].items():
            phases.setdefault(k, []).append(v)
    print('\nours, phases (run.json timings, median over runs, seconds)')
    print('| phase | ' + ' | '.join(f'run {i + 1}' for i in
                                    range(len(ours_manifests)))
          + ' | median |')
    print('|---|' + '---:|' * (len(ours_manifests) + 1))
    for k, vs in phases.items():
        print(f'| {k} | ' + ' | '.join(f'{v:.2f}' for v in vs)
              + f' | {statistics.median(vs):.2f} |')

    max_diff = max(diffs)
    parity_ok = max_diff <= PARITY_TOL
    print(f'\nparity: max |reference - ours| of {FEATURE} over '
          f'{len(diffs)} pair(s) = {max_diff:.3e} (tolerance '
          f'{PARITY_TOL:g}): {"PASS" if parity_ok else "FAIL"}')

    # Cache run: same config/checkpoint/samples, another perplexity.
    perplexity = '20' if args.per_class * 10 < 500 else '50'
    with exclusive(args.lock):
        wall, c_dir, manifest = run_ours(
            config, ours_dir, args, osp.join(logs, 'ours_cache.log'),
            ['--perplexity', perplexity], analysis=False)
    timings = manifest['timings']
    cached_from = manifest['extraction'].get('cached_from')
    tsne = sum(v for k, v in timings.items() if k.startswith('tsne:'))
    overhead = wall - tsne
    reused = bool(cached_from) and 'features_from_cache' in timings and \
        'extraction' not in timings
    same = np.array_equal(np.load(osp.join(c_dir, FEATURE)),
                          np.load(osp.join(b_dir, FEATURE)))
    print(f'\ncache run (ours, --perplexity {perplexity}, no --no-cache):')
    print(f'  reused features: {"yes" if reused else "NO"} '
          f'(cached_from={cached_from}); features identical: {same}')
    print(f'  total {wall:.2f} s (process), {timings["total"]:.2f} s '
          f'(in-process); t-SNE {tsne:.2f} s; overhead = total - t-SNE = '
          f'{overhead:.2f} s (target <= {TARGET_CACHE_OVERHEAD:g} s)')
    print('  phases: ' + ', '.join(f'{k} {v:.2f}'
                                   for k, v in timings.items()))

    speed_ok = median >= TARGET_SPEEDUP
    cache_ok = overhead <= TARGET_CACHE_OVERHEAD
    print(f'\nsummary: median speed-up {median:.2f}x over {len(rows)} '
          f'pair(s) (target {TARGET_SPEEDUP}x: '
          f'{"PASS" if speed_ok else "MISS"}); parity '
          f'{"PASS" if parity_ok else "FAIL"}; cache reuse '
          f'{"PASS" if reused and same else "FAIL"}; cache overhead '
          f'{overhead:.2f} s ({"PASS" if cache_ok else "MISS"})'
          + (' [--quick: timing targets not enforced]' if args.quick
             else ''))
    failed = not parity_ok or not (reused and same)
    if not args.quick:
        failed = failed or not speed_ok or not cache_ok
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
