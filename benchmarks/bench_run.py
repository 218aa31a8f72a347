"""End-to-end default run of ``tools/vis_tsne.py --features``: time and RSS.

Runs the whole default pipeline (t-SNE, metrics, every default analysis
step) on the synthetic 512-d deep-feature look-alikes of ``bench_tsne.py``
in a child process under ``/usr/bin/time -v``, and prints the per-phase
seconds of ``run.json`` (``timings``), the wall time and the peak RSS.
``--root`` runs another checkout of tsneviz (e.g. an export of an older
commit) on the same matrix, so "before" and "after" use the same data:

    OMP_NUM_THREADS=2 python benchmarks/bench_run.py --n 100000
    git archive HEAD | tar -x -C /tmp/before
    OMP_NUM_THREADS=2 python benchmarks/bench_run.py --n 100000 \\
        --root /tmp/before
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_tsne import CACHE_DIR, make_features  # noqa: E402


def matrix(n):
    """Paths of the cached ``.npy`` features and labels of ``n`` points."""
    import numpy as np
    feats = CACHE_DIR / f'run_X_n{n}.npy'
    labels = CACHE_DIR / f'run_y_n{n}.npy'
    if not feats.exists():
        X, y = make_features(n)
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        np.save(feats, X)
        np.save(labels, y)
    return feats, labels


def run(root, n):
    """One default run in ``root``; returns (timings, wall s, peak RSS MB)."""
    feats, labels = matrix(n)
    with tempfile.TemporaryDirectory() as work:
        cmd = ['/usr/bin/time', '-v', sys.executable,
               str(Path(root) / 'tools' / 'vis_tsne.py'),
               '--features', str(feats), '--labels', str(labels),
               '--work-dir', work]
        env = dict(os.environ, PYTHONPATH=str(root))
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, cwd=root, capture_output=True,
                              text=True)
        wall = time.perf_counter() - start
        if done.returncode:
            sys.exit(done.stderr[-3000:])
        rss = int(re.search(r'Maximum resident set size \(kbytes\): (\d+)',
                            done.stderr).group(1)) / 1024
        manifest = next(Path(work).rglob('run.json'))
        info = json.loads(manifest.read_text())
    return info, wall, rss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--n', type=int, default=100_000)
    parser.add_argument('--root', default=str(HERE.parent),
                        help='checkout of tsneviz to run (default: this one)')
    args = parser.parse_args()
    print(f'load average before: {os.getloadavg()[0]:.2f}')
    info, wall, rss = run(args.root, args.n)
    for phase, seconds in info['timings'].items():
        print(f'{phase:32s} {seconds:8.1f} s')
    for step, outcome in (info.get('analysis') or {}).items():
        print(f'{"analysis:" + step:32s} {outcome.get("seconds", 0):8.1f} s'
              f'  {outcome["status"]}')
    print(f'{"wall (process)":32s} {wall:8.1f} s')
    print(f'{"peak RSS":32s} {rss:8.0f} MB')
    graph = info.get('neighbor_graph')
    if graph:
        print('neighbor_graph', json.dumps(graph))
    print('results', json.dumps(info.get('results')))


if __name__ == '__main__':
    main()
