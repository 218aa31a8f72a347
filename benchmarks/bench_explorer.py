"""The explorer page at scale: write time, page size, first render, latency.

For each of ``--sizes`` (default 1k, 10k and 100k points) the script writes
a synthetic run directory (:func:`make_run`: blobs per class as the t-SNE
map, predictions, loss, clusters and stored neighbours; the images are
``--images`` shared PNG files, so thumbnails are few and the figures are
about the page, not about image decoding), writes its explorer with
:func:`tsneviz.explorer.write_explorer`, and opens it from ``file://`` in
headless Chromium (Debian's ``/usr/bin/chromium`` through Playwright, the
browser arguments of the tests). It reports:

* ``write``: seconds of ``write_explorer`` (thumbnails, data files, page);
* ``page``: bytes of ``index.html``; ``lazy``: bytes of
  ``explorer/neighbors.js`` + ``explorer/samples.js``, loaded on the first
  click and the first download, not at open (each apart in ``--json``:
  ``neighbors_bytes``, ``samples_bytes``);
* ``first render``: milliseconds from navigation start to the first frame
  painted after Bokeh built the plot (``window.tsneviz.readyAt``), median
  of ``--repeats`` fresh loads;
* ``hover``: milliseconds from a real ``mousemove`` onto a point to the
  next frame after the hover card shows that point (in-page clock),
  median of 10 points;
* ``lasso``: milliseconds from the ``mouseup`` that ends a real lasso drag
  around the middle of the map to the next frame after the selection
  panel is updated (in-page clock), median of 3 drags;
* ``webgl``: whether Bokeh got a WebGL context (else it draws on a 2-D
  canvas, much slower at 100k).

Usage (as run for benchmarks/README.md)::

    flock /tmp/tsneviz-bench.lock python benchmarks/bench_explorer.py

At a million points (benchmarks/README.md, "A million points")::

    python benchmarks/bench_explorer.py --sizes 100000 1000000 \
        --backends auto

Smoke version::

    python benchmarks/bench_explorer.py --sizes 1000 --repeats 1
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu',
                 '--disable-background-networking',
                 '--disable-component-update', '--disable-sync',
                 '--no-first-run']
N_CLASSES = 20


def make_run(run_dir: str, n: int, n_images: int = 10, k: int = 9,
             seed: int = 0) -> str:
    """A minimal valid run directory of ``n`` synthetic samples.

    Everything :class:`tsneviz.rundir.Run` and the explorer read:
    ``run.json``, ``samples.csv`` (with predictions, loss and clusters),
    ``feat_0.npy`` (tiny: the explorer reads only the stored neighbours),
    ``tsne_feat_0.npy`` and ``neighbors_feat_0.npz`` (random neighbours
    within each class, ascending distances).
    """
    from PIL import Image

    from tsneviz.labels import LabelSpace
    from tsneviz.rundir import write_array, write_json, write_table

    rng = np.random.default_rng(seed)
    os.makedirs(run_dir, exist_ok=True)
    data = osp.join(run_dir, 'data')
    labels = rng.integers(0, N_CLASSES, n)
    paths = []
    for i in range(n_images):
        folder = osp.join(data, str(i % N_CLASSES))
        os.makedirs(folder, exist_ok=True)
        path = osp.join(folder, f'{i}.png')
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        paths.append(path)
    centres = rng.normal(0, 30, (N_CLASSES, 2))
    coords = (centres[labels] + rng.normal(0, 4, (n, 2))).astype(np.float32)
    wrong = rng.random(n) < 0.1
    pred = np.where(wrong, rng.integers(0, N_CLASSES, n), labels)
    score = np.where(wrong, rng.uniform(0.2, 0.6, n), rng.uniform(0.8, 1, n))
    loss = np.where(wrong, rng.uniform(0.5, 5, n),
                    rng.exponential(0.05, n))
    write_table(osp.join(run_dir, 'samples.csv'), dict(
        index=np.arange(n), img_path=[paths[i % n_images] for i in range(n)],
        gt_label=labels, gt_class=labels, pred_label=pred, pred_class=pred,
        score=score, entropy=1 - score, loss=loss,
        feat_0_x=coords[:, 0], feat_0_y=coords[:, 1],
        cluster=labels % 12))
    write_array(osp.join(run_dir, 'feat_0.npy'),
                rng.normal(size=(n, 4)).astype(np.float32))
    write_array(osp.join(run_dir, 'tsne_feat_0.npy'), coords)
    members = [np.flatnonzero(labels == c) for c in range(N_CLASSES)]
    nn = np.empty((n, k), np.int32)
    for c, rows in enumerate(members):
        nn[rows] = rows[rng.integers(0, len(rows), (len(rows), k))]
    np.savez(osp.join(run_dir, 'neighbors_feat_0.npz'), indices=nn,
             distances=np.sort(rng.uniform(0, 0.5, (n, k)), 1)
             .astype(np.float32), metric=np.array('cosine'))
    classes = [str(c) for c in range(N_CLASSES)]
    # recorded as every run since label spaces does (else each Run guesses
    # it from the table: seconds at 1M that no real run spends)
    space = LabelSpace.build(classes, labels, N_CLASSES, classes)
    write_json(osp.join(run_dir, 'run.json'), dict(
        n_samples=n, classes=classes, label_space=space.to_json(),
        data_prefix=data, extraction=dict(keys=['feat_0']),
        outputs=['samples.csv', 'feat_0.npy', 'tsne_feat_0.npy',
                 'neighbors_feat_0.npz']))
    return run_dir


def _lasso(page, frame, fraction=0.3, steps=40):
    cx = frame['left'] + frame['width'] / 2
    cy = frame['top'] + frame['height'] / 2
    r = fraction * min(frame['width'], frame['height'])
    angles = np.linspace(0, 2 * np.pi, steps)
    page.mouse.move(cx + r, cy)
    page.mouse.down()
    for a in angles[1:]:
        page.mouse.move(cx + r * np.cos(a), cy + r * np.sin(a))
    page.mouse.up()


def measure(browser, page_path: str, n: int, repeats: int) -> dict:
    """Open the page ``repeats`` times; hover and lasso on the last load."""
    url = Path(page_path).as_uri()
    renders = []
    for _ in range(repeats):
        context = browser.new_context(viewport=dict(width=1400, height=900))
        page = context.new_page()
        page.goto(url)
        page.wait_for_function('window.tsneviz && window.tsneviz.ready',
                               timeout=300_000)
        renders.append(page.evaluate('tsneviz.readyAt'))
        if len(renders) < repeats:
            context.close()
    webgl = page.evaluate('tsneviz.webgl')
    page.evaluate("""() => {
        window.addEventListener('pointermove',
            () => { window.__moveAt = performance.now(); }, true);
        window.addEventListener('pointerup',
            () => { window.__upAt = performance.now(); }, true);
    }""")
    rng = np.random.default_rng(1)
    hovers = []
    for pos in rng.choice(n, 10, replace=False):
        xy = page.evaluate(f'tsneviz.toScreen({int(pos)})')
        frame = page.evaluate('tsneviz.frameRect()')
        if not (frame['left'] < xy['x'] < frame['left'] + frame['width'] and
                frame['top'] < xy['y'] < frame['top'] + frame['height']):
            continue
        page.mouse.move(xy['x'] + 40, xy['y'] + 40)
        page.mouse.move(xy['x'], xy['y'])
        page.wait_for_function(
            '() => !document.getElementById("tsneviz-hover").hidden && '
            'tsneviz.lastHover && tsneviz.lastHover.at >= window.__moveAt '
            '&& tsneviz.lastHover.paintedAt')
        hovers.append(page.evaluate(
            'tsneviz.lastHover.paintedAt - window.__moveAt'))
    lassos, selected = [], 0
    frame = page.evaluate('tsneviz.frameRect()')
    for i in range(3):
        page.evaluate('tsneviz.lastSelect = null')
        _lasso(page, frame, fraction=0.2 + 0.05 * i)
        page.wait_for_function(
            'tsneviz.lastSelect != null && tsneviz.lastSelect.paintedAt && '
            'tsneviz.lastSelect.at >= window.__upAt', timeout=120_000)
        lassos.append(page.evaluate(
            'tsneviz.lastSelect.paintedAt - window.__upAt'))
        selected = page.evaluate('tsneviz.lastSelect.count')
    context.close()
    return dict(first_render_ms=statistics.median(renders),
                first_render_all_ms=renders, webgl=webgl,
                hover_ms=statistics.median(hovers) if hovers else None,
                lasso_ms=statistics.median(lassos), lasso_selected=selected)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[1000, 10_000, 100_000])
    parser.add_argument('--repeats', type=int, default=3,
                        help='fresh page loads per size. Defaults to 3')
    parser.add_argument('--images', type=int, default=10,
                        help='distinct image files shared by the samples')
    parser.add_argument('--out', help='where the run directories go. '
                        'Defaults to a temporary folder')
    parser.add_argument('--backends', nargs='+', default=['auto', 'webgl'],
                        help="the page's backend config: auto (WebGL "
                        'unless software GL, then canvas), webgl, canvas. '
                        'Defaults to auto webgl')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from tsneviz.explorer import with_config, write_explorer

    out = args.out or tempfile.mkdtemp(prefix='bench_explorer_')
    print(f'load average {os.getloadavg()[0]:.1f}; run dirs in {out}',
          flush=True)
    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=CHROMIUM_ARGS)
        for n in args.sizes:
            run_dir = make_run(osp.join(out, f'run_{n}'), n, args.images)
            start = time.perf_counter()
            page = write_explorer(run_dir)
            write_s = time.perf_counter() - start
            lazy = {f: osp.getsize(osp.join(run_dir, 'explorer', f))
                    for f in ('neighbors.js', 'samples.js')}
            text = open(page, encoding='utf-8').read()
            for backend in args.backends:
                variant = osp.join(run_dir, f'index_{backend}.html')
                with open(variant, 'w', encoding='utf-8') as f:
                    f.write(with_config(text, backend=backend))
                row = dict(n=n, backend=backend, write_s=round(write_s, 2),
                           page_bytes=osp.getsize(page),
                           lazy_bytes=sum(lazy.values()),
                           neighbors_bytes=lazy['neighbors.js'],
                           samples_bytes=lazy['samples.js'],
                           load=round(os.getloadavg()[0], 1))
                row.update(measure(browser, variant, n, args.repeats))
                results.append(row)
                print(json.dumps(row), flush=True)
        browser.close()

    print('\n| points | backend | write | index.html | lazy data | first '
          'render (median) | hover | lasso (selected) | WebGL used |')
    print('|---|---|---|---|---|---|---|---|---|')
    for r in results:
        print(f"| {r['n']:,} | {r['backend']} | {r['write_s']:.1f} s | "
              f"{r['page_bytes'] / 1e6:.2f} MB | {r['lazy_bytes'] / 1e6:.2f} "
              f"MB | {r['first_render_ms']:.0f} ms | "
              f"{r['hover_ms']:.0f} ms | {r['lasso_ms']:.0f} ms "
              f"({r['lasso_selected']:,}) | {r['webgl']} |")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
