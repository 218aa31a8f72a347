"""The whole default run at 10k, 100k and 1M points, against a bare openTSNE.

For each of ``--sizes`` the script runs, as separate processes under
``/usr/bin/time -v`` and one after the other in this one run:

1. ``tools/vis_tsne.py --features X.npy --labels y.npy --images LIST`` with
   every default (layout, metrics, every default analysis step, thumbnails
   and the explorer), and reads its per-phase seconds from ``run.json``
   (``timings`` and ``analysis``);
2. the explorer it wrote, opened from ``file://`` in headless Chromium:
   seconds from navigation to ``window.tsneviz.ready`` (all points drawn);
3. a bare ``openTSNE.TSNE().fit(X)`` with the library's defaults on the
   same matrix (for ``--bare-sizes`` only: at 1M it takes more than an hour
   on two cores).

It prints one table: per phase, the whole process, peak RSS, the ratio of
the run to the bare fit, and the growth from one size to the next.

Features are ``bench_tsne.py``'s synthetic 512-d deep-feature look-alikes.
Images are 32x32 greyscale digits written once under ``.cache/`` (a pool of
``--image-pool`` distinct files, each a digit of scikit-learn's set with
its own seeded noise); row ``i`` shows file ``i % pool``, so a run of more
rows than the pool repeats images, as a dataset with duplicates does, and
its thumbnails are written once per distinct file.

    OMP_NUM_THREADS=2 python benchmarks/bench_scale.py             # all
    python benchmarks/bench_scale.py --sizes 10000 --bare-sizes 10000
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

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_run import matrix  # noqa: E402
from bench_tsne import CACHE_DIR  # noqa: E402

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu',
                 '--disable-background-networking',
                 '--disable-component-update', '--disable-sync',
                 '--no-first-run']
BARE_FIT = ('import sys, numpy as np, openTSNE; '
            'openTSNE.TSNE().fit(np.load(sys.argv[1]))')


def image_pool(size: int) -> list:
    """Paths of ``size`` distinct 32x32 digit PNGs, written once."""
    from PIL import Image
    from sklearn.datasets import load_digits

    folder = CACHE_DIR / f'scale_images_{size}'
    done = folder / 'done'
    paths = [str(folder / f'{i // 1000:04d}' / f'{i}.png')
             for i in range(size)]
    if done.exists():
        return paths
    digits = load_digits().images / 16.0
    rng = np.random.default_rng(0)
    for i, path in enumerate(paths):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        digit = np.kron(digits[i % len(digits)], np.ones((4, 4)))
        noisy = np.clip(digit + rng.normal(0, 0.08, digit.shape), 0, 1)
        Image.fromarray((noisy * 255).astype(np.uint8)).save(path)
    done.write_text('ok')
    return paths


def image_list(n: int, pool: int) -> Path:
    """A text file naming the image of each of ``n`` rows."""
    path = CACHE_DIR / f'scale_images_n{n}_pool{pool}.txt'
    if not path.exists():
        paths = image_pool(min(n, pool))
        path.write_text(''.join(paths[i % len(paths)] + '\n'
                                for i in range(n)))
    return path


def timed(cmd, env=None):
    """Run ``cmd`` under ``/usr/bin/time -v``: (wall s, peak RSS MB)."""
    start = time.perf_counter()
    done = subprocess.run(['/usr/bin/time', '-v'] + cmd, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f'{cmd[:3]} failed:\n{done.stderr[-3000:]}')
    rss = int(re.search(r'Maximum resident set size \(kbytes\): (\d+)',
                        done.stderr).group(1)) / 1024
    return wall, rss


def explorer_ready(page: Path) -> float:
    """Seconds from navigating to ``page`` to ``window.tsneviz.ready``."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={'width': 1400, 'height': 900})
        start = time.perf_counter()
        tab.goto(page.as_uri())
        tab.wait_for_function('window.tsneviz && window.tsneviz.ready',
                              timeout=600_000)
        seconds = time.perf_counter() - start
        browser.close()
    return seconds


def run_tsneviz(n: int, pool: int, work: str) -> dict:
    """One default run of ``n`` rows; its phases, wall, RSS, readiness."""
    feats, labels = matrix(n)
    images = image_list(n, pool)
    cmd = [sys.executable, str(HERE.parent / 'tools' / 'vis_tsne.py'),
           '--features', str(feats), '--labels', str(labels),
           '--images', str(images), '--work-dir', work]
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    wall, rss = timed(cmd, env)
    manifest = next(Path(work).rglob('run.json'))
    info = json.loads(manifest.read_text())
    phases = {k: v for k, v in info['timings'].items() if k != 'total'}
    for step, outcome in (info.get('analysis') or {}).items():
        if outcome.get('status') != 'ok':
            sys.exit(f'analysis step {step} ended {outcome.get("status")}')
        phases['analysis: ' + step] = outcome.get('seconds', 0.0)
    page = manifest.parent / 'index.html'
    ready = explorer_ready(page) if page.exists() else float('nan')
    return dict(phases=phases, wall=wall, rss=rss, ready=ready,
                graph=info.get('neighbor_graph'),
                layout=info['results']['feat_0'])


def run_bare(n: int) -> dict:
    """A bare ``openTSNE.TSNE().fit`` of the same matrix."""
    feats, _ = matrix(n)
    wall, rss = timed([sys.executable, '-c', BARE_FIT, str(feats)])
    return dict(wall=wall, rss=rss)


def table(results: dict) -> str:
    """The markdown table: one column per size."""
    sizes = sorted(results)
    phases = []
    for n in sizes:
        for phase in results[n]['run']['phases']:
            if phase not in phases:
                phases.append(phase)
    head = '| phase | ' + ' | '.join(f'{n:,}' for n in sizes) + ' |'
    lines = [head, '|---|' + '---:|' * len(sizes)]

    def row(name, values):
        lines.append(f'| {name} | ' + ' | '.join(values) + ' |')

    for phase in phases:
        row(phase, [f'{results[n]["run"]["phases"].get(phase, 0):.1f} s'
                    for n in sizes])
    graphs = [results[n]['run']['graph']['feat_0'] for n in sizes]
    row('graph: builder, recall', [f'{g["builder"]}, {g["recall"]:.3f}'
                                   for g in graphs])
    layouts = [results[n]['run']['layout'] for n in sizes]
    row('t-SNE iterations', [str(x['n_iter']) for x in layouts])
    row('trustworthiness (5,000-row sample)',
        [f'{x["trustworthiness"]:.4f}' for x in layouts])
    row('**whole run (process wall)**',
        [f'**{results[n]["run"]["wall"]:.1f} s**' for n in sizes])
    row('peak RSS', [f'{results[n]["run"]["rss"]:,.0f} MB' for n in sizes])
    row('explorer ready in Chromium',
        [f'{results[n]["run"]["ready"]:.2f} s' for n in sizes])
    row('bare openTSNE.TSNE().fit (process wall)',
        [f'{results[n]["bare"]["wall"]:.1f} s' if results[n]['bare']
         else 'not run' for n in sizes])
    row('bare fit peak RSS',
        [f'{results[n]["bare"]["rss"]:,.0f} MB' if results[n]['bare']
         else '-' for n in sizes])
    row('**run / bare fit**',
        [f'**{results[n]["run"]["wall"] / results[n]["bare"]["wall"]:.2f}'
         'x**' if results[n]['bare'] else '-' for n in sizes])
    growth = ['-'] + [
        f'{results[b]["run"]["wall"] / results[a]["run"]["wall"]:.1f}x '
        f'for {b / a:.0f}x points' for a, b in zip(sizes, sizes[1:])]
    row('run growth from the previous size', growth)
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[10_000, 100_000, 1_000_000])
    parser.add_argument('--bare-sizes', type=int, nargs='*',
                        default=[10_000, 100_000],
                        help='sizes that also get a bare openTSNE fit')
    parser.add_argument('--image-pool', type=int, default=100_000,
                        help='distinct image files (default: %(default)s)')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args()
    results = {}
    for n in args.sizes:
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as work:
            run = run_tsneviz(n, args.image_pool, work)
        bare = run_bare(n) if n in args.bare_sizes else None
        results[n] = dict(run=run, bare=bare, load_before=load,
                          load_after=os.getloadavg()[0])
        print(json.dumps({n: results[n]}), flush=True)
    print()
    print(table(results))
    print('1-minute load average before / after each size: ' + ', '.join(
        f'{n:,}: {r["load_before"]:.1f} / {r["load_after"]:.1f}'
        for n, r in results.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == '__main__':
    main()
