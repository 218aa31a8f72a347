"""The explorer page in a real headless Chromium, on a real demo run.

Chromium comes from Debian (``/usr/bin/chromium``, installed by ``make
browser``, which ``make test`` runs) and is driven by Playwright's Python
package; the page is opened from ``file://`` and every interaction is a
real mouse event. ``window.tsneviz`` is used only to read state and to map
data coordinates to the screen.
"""
import csv
import io
import json
import os
import os.path as osp
import pathlib
import re

import numpy as np
import pytest

from tests.conftest import DEMO_CHECKPOINT, DEMO_CONFIG, REPO

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu',
                 '--disable-background-networking',
                 '--disable-component-update', '--disable-sync',
                 '--no-first-run']
ARTIFACTS = osp.join(REPO, 'test-artifacts')
VIEWPORT = dict(width=1400, height=900)
# A point this close (screen pixels) to the lasso's edge may fall either
# way by rounding; it is left out of the comparison.
EDGE_PX = 3.0


def ensure_chromium() -> str:
    """Debian's chromium; ``make browser`` (called by ``make test``) installs
    it, so that tests install nothing themselves."""
    if not osp.isfile(CHROMIUM):
        pytest.fail(f'{CHROMIUM} is missing: run `make browser` (as root), '
                    'or `apt-get install -y chromium`')
    return CHROMIUM


@pytest.fixture(scope='module')
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('the playwright package is missing: pip install -r '
                    'requirements/tests.txt')
    executable = ensure_chromium()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable,
                                      args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory, digits_options):
    """A real run of the demo model on the digits, 20 per class, and its
    explorer."""
    from tsneviz.apis import run_vis_tsne
    from tsneviz.explorer import write_explorer

    work_dir = str(tmp_path_factory.mktemp('explorer') / 'work')
    run_dir = run_vis_tsne(DEMO_CONFIG, DEMO_CHECKPOINT, work_dir=work_dir,
                           cfg_options=dict(digits_options),
                           max_num_samples=20,
                           tsne=dict(perplexity=10.0, n_iter=300),
                           show_progress=False)
    # the default label_issues step used the head (cleanlab), which finds
    # nothing wrong in the clean digits; the feature-space vote flags a few
    # ambiguous ones, which the filter must show
    from tsneviz.analysis.label_issues import find_label_issues
    find_label_issues(run_dir, method='knn')
    return run_dir, write_explorer(run_dir, k=9)


def test_explorer_files(demo_run):
    from tsneviz.rundir import Run

    run_dir, page = demo_run
    assert page == osp.join(run_dir, 'index.html')
    run = Run(run_dir)
    text = open(page, encoding='utf-8').read()
    # standalone: Bokeh inlined, nothing fetched from a CDN
    assert 'cdn.bokeh.org' not in text
    assert '<script src=' not in text and '<link ' not in text
    # thumbnails by relative path, never inlined per point: the only
    # inline images are Bokeh's own toolbar icons
    from bokeh.resources import Resources
    bokeh_js = Resources(mode='inline',
                         components=['bokeh', 'bokeh-gl']).render_js()
    assert text.count('data:image') == bokeh_js.count('data:image')
    assert 'thumbs/sheet_{sheet}.png' in text
    # a WebGL scatter (the page falls back to Bokeh's canvas only where
    # the browser's WebGL is a software rasteriser)
    assert '"output_backend":"webgl"' in text
    assert len(text) < 2_500_000
    manifest = run.manifest
    assert manifest['explorer']['k'] == 9
    assert manifest['explorer']['n_thumbnails'] == len(run) == 200
    for name in manifest['outputs']:
        assert osp.isfile(osp.join(run_dir, name)), name
    assert 'index.html' in manifest['outputs']
    # one sheet of packed thumbnails, not a file per image
    assert {n for n in manifest['outputs'] if n.startswith('thumbs/')} == {
        'thumbs/sheet_0.png', 'thumbs/index.js', 'thumbs/index.json'}
    assert sorted(os.listdir(osp.join(run_dir, 'thumbs'))) == [
        'index.js', 'index.json', 'sheet_0.png']
    assert osp.isfile(osp.join(run_dir, 'neighbors_feat_3.npz'))
    # run.json stays the last file written
    newest = max(os.listdir(run_dir),
                 key=lambda n: os.stat(osp.join(run_dir, n)).st_mtime_ns)
    assert newest == 'run.json'


def test_with_config_changes_only_urls(demo_run):
    from tsneviz.errors import UserError
    from tsneviz.explorer import CONFIG_ID, with_config

    _, page = demo_run
    text = open(page, encoding='utf-8').read()
    served = with_config(text, base_url='/runs/r1/',
                         image_url='/api/runs/r1/images/{index}')
    assert len(served) - len(text) < 200
    start = served.index(f'<script id="{CONFIG_ID}"')
    block = served[start:served.index('</script>', start)]
    config = json.loads(block[block.index('>') + 1:])
    assert config['base_url'] == '/runs/r1/'
    assert config['sheet_url'] == 'thumbs/sheet_{sheet}.png'
    with pytest.raises(UserError, match='unknown'):
        with_config(text, thumbs='x')


def _inside(points: np.ndarray, polygon: np.ndarray):
    """Inside/outside of a closed polygon, and points too near its edge."""
    from matplotlib.path import Path

    inside = Path(polygon).contains_points(points)
    a, b = polygon, np.roll(polygon, -1, axis=0)
    ab = b - a
    t = np.clip(((points[:, None] - a[None]) * ab[None]).sum(-1)
                / (ab * ab).sum(-1)[None], 0, 1)
    nearest = a[None] + t[..., None] * ab[None]
    edge = np.linalg.norm(points[:, None] - nearest, axis=-1).min(1)
    return inside, edge < EDGE_PX


def check_thumbnail(page, selector, run_dir, position):
    """The thumbnail element ``selector`` shows the packed cell of the
    sample at ``position``: its background is that cell of that sheet,
    and its pixels are the cell's, enlarged without smoothing."""
    from PIL import Image

    from tsneviz.rundir.thumbs import read_packed

    packed = read_packed(run_dir)
    thumb = int(packed.ids[position])
    sheet, x, y, w, h = packed.locate(thumb)
    page.wait_for_selector(f'{selector}[data-painted="1"]')
    box = page.locator(selector)
    assert box.get_attribute('data-thumb') == str(thumb)
    width, height = box.evaluate('e => [getComputedStyle(e).width, '
                                 'getComputedStyle(e).height]')
    scale = min(float(width[:-2]) / w, float(height[:-2]) / h)
    cell = box.locator('i')
    style = cell.evaluate(
        'e => { const s = getComputedStyle(e); return [s.backgroundImage,'
        ' s.backgroundPositionX, s.backgroundPositionY, s.width, s.height,'
        ' s.imageRendering]; }')
    image, left, top, cell_w, cell_h, rendering = style
    assert image.endswith(f'thumbs/sheet_{sheet}.png")'), image
    assert float(left[:-2]) == pytest.approx(-x * scale)
    assert float(top[:-2]) == pytest.approx(-y * scale)
    assert float(cell_w[:-2]) == pytest.approx(w * scale)
    assert float(cell_h[:-2]) == pytest.approx(h * scale)
    assert rendering == ('pixelated' if scale > 1 else 'auto')
    page.wait_for_function(
        '(url) => { const i = new Image(); i.src = url; return i.complete; }',
        arg=image[5:-2])
    shot = np.asarray(Image.open(io.BytesIO(cell.screenshot())).convert(
        'RGB'), np.float32)
    # the element may start between screen pixels: the screenshot can be a
    # pixel larger, and its best-aligned crop is compared
    size = (round(w * scale), round(h * scale))

    def mismatch(t):
        want = np.asarray(packed.thumbnail(t).convert('RGB').resize(
            size, Image.Resampling.NEAREST), np.float32)
        return min(
            np.abs(shot[dy:dy + size[1], dx:dx + size[0]] - want).mean()
            for dy in range(shot.shape[0] - size[1] + 1)
            for dx in range(shot.shape[1] - size[0] + 1))

    own = mismatch(thumb)
    other = mismatch(thumb + 1 if thumb + 1 < len(packed) else thumb - 1)
    assert own < 4.0 and own < other / 4, (own, other)
    return thumb


def _wait_ready(page):
    page.wait_for_function('window.tsneviz && window.tsneviz.ready',
                           timeout=60_000)


def explore(browser, run_dir, url, origin, tmp_path, screenshot=None):
    """The whole flow with real mouse events; ``origin``: the only URL
    prefix the page may request (besides its own blob: downloads)."""
    from tsneviz.exporters.selection import read_indices
    from tsneviz.exporters.splits import write_annotation
    from tsneviz.rundir import Run

    run = Run(run_dir)
    index = run.table['index'].astype(int)
    labels = run.labels
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    requests, errors = [], []
    page.on('request', lambda r: requests.append(r.url))
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto(url)
    _wait_ready(page)
    assert page.evaluate('tsneviz.source.data.x.length') == len(run)
    # Chromium runs with --disable-gpu: its WebGL, if it has one, is a
    # software rasteriser, so the 'auto' backend must have drawn on Bokeh's
    # canvas and said so
    renderer = page.evaluate('tsneviz.glRenderer || null')
    assert renderer is None or re.search(
        'swiftshader|llvmpipe|softpipe|software', renderer, re.I), renderer
    assert page.evaluate('tsneviz.webgl') is False
    assert page.locator('#tsneviz-status').inner_text() == \
        'canvas (no hardware WebGL)'

    # hover: the sample's thumbnail, label, prediction, score and loss
    # (the point whose neighbourhood on screen is emptiest, so the hover
    # picks it and not a point drawn on top of it)
    screen = np.array(page.evaluate(
        f'Array.from({{length: {len(run)}}}, (_, i) => tsneviz.toScreen(i))'
        '.map(p => [p.x, p.y])'))
    gaps = np.linalg.norm(screen[:, None] - screen[None], axis=-1)
    np.fill_diagonal(gaps, np.inf)
    target = int(gaps.min(1).argmax())
    page.mouse.move(*screen[target])
    page.wait_for_selector('#tsneviz-hover:not([hidden])')
    hovered = page.locator('#tsneviz-hover .sample')
    assert hovered.get_attribute('data-position') == str(target)
    # 32 px digits in a 96 px box: each cell pixel is 3 x 3 on screen
    check_thumbnail(page, '#tsneviz-hover .thumb', run_dir, target)
    caption = page.locator('#tsneviz-hover figcaption').inner_text()
    assert f'#{index[target]}' in caption
    assert 'pred' in caption and 'score' in caption and 'loss' in caption

    # click: its 9 nearest neighbours, mostly of its own class
    page.mouse.click(*screen[target])
    page.wait_for_selector(
        f'#tsneviz-focus[data-position="{target}"][data-ready="1"]')
    # its larger image where the config names one (a server), else its
    # thumbnail
    page.wait_for_function(
        '() => { const i = document.querySelector("#focus-sample img");'
        ' return (i && i.complete && i.naturalWidth > 0) || document'
        '.querySelector("#focus-sample .thumb[data-painted]"); }')
    neighbours = page.locator('#tsneviz-neighbors .sample')
    assert neighbours.count() == 9
    gts = [int(neighbours.nth(i).get_attribute('data-gt'))
           for i in range(9)]
    assert sum(g == labels[target] for g in gts) >= 6, gts
    stored = np.load(osp.join(run_dir, 'neighbors_feat_3.npz'))['indices']
    positions = [int(neighbours.nth(i).get_attribute('data-position'))
                 for i in range(9)]
    assert positions == stored[target, :9].tolist()
    check_thumbnail(page, '#tsneviz-neighbors .sample:nth-child(1) .thumb',
                    run_dir, positions[0])
    # clicking a neighbour moves the focus to it
    neighbours.nth(2).click()
    page.wait_for_selector(
        f'#tsneviz-focus[data-position="{positions[2]}"][data-ready="1"]')

    # colour and filter switches
    page.select_option('#color-by', 'loss')
    assert page.locator('#tsneviz-colorbar').is_visible()
    page.select_option('#color-by', 'gt')
    n_wrong = int((run.table['pred_label'] != run.table['gt_label']).sum())
    page.select_option('#filter', 'misclassified')
    assert page.locator('#visible-count').get_attribute(
        'data-count') == str(n_wrong)
    # the suspected label errors only
    n_issues = int((run.table['label_issue'] == 1).sum())
    assert 0 < n_issues < len(run)
    page.select_option('#filter', 'label_issue')
    assert page.locator('#visible-count').get_attribute(
        'data-count') == str(n_issues)
    shown = page.evaluate('Array.from(tsneviz.filter.indices)')
    assert shown == np.flatnonzero(run.table['label_issue'] == 1).tolist()
    page.select_option('#filter', 'all')
    page.locator('#tsneviz-legend .legend-item[data-value="0"]').click()
    assert page.locator('#visible-count').get_attribute(
        'data-count') == str(len(run) - int((labels == 0).sum()))
    page.locator('#legend-all').click()
    assert page.locator('#visible-count').get_attribute(
        'data-count') == str(len(run))

    # lasso (the default drag tool): a real drag around a pentagon
    frame = page.evaluate('tsneviz.frameRect()')
    cx = frame['left'] + frame['width'] * 0.5
    cy = frame['top'] + frame['height'] * 0.5
    radius = 0.42 * min(frame['width'], frame['height'])
    angles = np.linspace(0, 2 * np.pi, 5, endpoint=False) + 0.3
    corners = np.stack([cx + radius * np.cos(angles),
                        cy + radius * np.sin(angles)], 1)
    path = np.concatenate([np.linspace(corners[i], corners[(i + 1) % 5], 12,
                                       endpoint=False) for i in range(5)])
    page.mouse.move(*path[0])
    page.mouse.down()
    for x, y in path[1:]:
        page.mouse.move(x, y)
    page.mouse.move(*path[0])
    page.mouse.up()
    page.wait_for_function(
        'Number(document.getElementById("tsneviz-selection")'
        '.dataset.count) > 0')
    selected = set(page.evaluate('tsneviz.state.selection'))
    inside, near_edge = _inside(screen, path)
    sure = ~near_edge
    expected = set(np.flatnonzero(inside & sure).tolist())
    assert 0 < len(expected) < len(run)
    assert selected & set(np.flatnonzero(sure)) == expected
    shown = page.locator('#selection-grid .sample')
    assert shown.count() == min(len(selected), 120)
    first = int(shown.nth(0).get_attribute('data-position'))
    check_thumbnail(page, '#selection-grid .sample:nth-child(1) .thumb',
                    run_dir, first)

    # the selection as CSV, read back by tsneviz's own reader
    with page.expect_download() as info:
        page.click('#download-csv')
    csv_path = str(tmp_path / 'selection.csv')
    info.value.save_as(csv_path)
    rows = list(csv.DictReader(open(csv_path, newline='')))
    chosen = sorted(selected)
    assert read_indices(csv_path) == [int(index[p]) for p in chosen]
    assert [r['img_path'] for r in rows] == \
        [run.image_paths[p] for p in chosen]
    assert [int(r['gt_label']) for r in rows] == labels[chosen].tolist()

    # ... and as annotation lines with a typed label, as write_annotation
    page.fill('#annotation-label', '7')
    with page.expect_download() as info:
        page.click('#download-annotation')
    ann_path = str(tmp_path / 'selection.txt')
    info.value.save_as(ann_path)
    reference = str(tmp_path / 'reference.txt')
    write_annotation(reference, [run.image_paths[p] for p in chosen],
                     [7] * len(chosen), run.manifest.get('data_prefix'))
    assert open(ann_path).read() == open(reference).read()
    assert not open(ann_path).read().startswith('/')

    if screenshot:
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=osp.join(ARTIFACTS, screenshot))
    context.close()

    assert not errors, errors
    # nothing but the page's own folder (or server); downloads are blob:
    # URLs made in the page
    remote = [u for u in requests
              if not u.startswith((origin, 'blob:' + origin))]
    assert not remote, remote
    assert any(u.endswith('/explorer/neighbors.js') for u in requests)
    return requests


def test_explorer_in_chromium(browser, demo_run, tmp_path):
    run_dir, page_path = demo_run
    requests = explore(browser, run_dir, pathlib.Path(page_path).as_uri(),
                       'file://', tmp_path, screenshot='explorer.png')
    assert all(u.startswith(('file://', 'blob:file://')) for u in requests)


def test_explorer_served(browser, demo_run, tmp_path):
    """The same page and flow from tsneviz.server on loopback."""
    import httpx

    from tests.test_server.test_app import Served
    from tsneviz.server.app import create_app

    run_dir, _ = demo_run
    (tmp_path / 'served').mkdir()
    served = Served(create_app(run_dir))
    try:
        run_id = httpx.get(served.url + '/api/runs').json()
        run_id = (run_id['runs'] if isinstance(run_id, dict)
                  else run_id)[0]['id']
        requests = explore(browser, run_dir, f'{served.url}/runs/{run_id}/',
                           served.url, tmp_path / 'served')
    finally:
        served.stop()
    # served, the focused sample's full image comes from the image API
    assert any(f'/api/runs/{run_id}/images/' in u for u in requests)
    # and the thumbnails' sheets and index from the thumbnails API
    assert any(u.endswith(f'/api/runs/{run_id}/thumbs/index.js')
               for u in requests)
    assert any(u.endswith(f'/api/runs/{run_id}/thumbs/sheet_0.png')
               for u in requests)


# ---- what the page is made of (no browser) ----------------------------------

def _samples_js(run_dir):
    text = open(osp.join(run_dir, 'explorer', 'samples.js'),
                encoding='utf-8').read()
    prefix = 'window.__tsneviz_samples = '
    assert text.startswith(prefix) and text.endswith(';\n')
    return json.loads(text[len(prefix):-2])


def test_samples_hold_the_downloads(demo_run):
    """The CSV rows (:func:`selection_rows`, which the page's rows equal)
    are in the columns of the selection module; samples.js holds each
    folder once, and folder + file name is the image path and its
    annotation path as splits.annotation_path makes it."""
    import base64

    from tsneviz.explorer import data as point_data
    from tsneviz.exporters.selection import CSV_COLUMNS
    from tsneviz.exporters.splits import annotation_path
    from tsneviz.rundir import Run

    run_dir, _ = demo_run
    run = Run(run_dir)
    samples = _samples_js(run_dir)
    assert samples['header'] == ','.join(CSV_COLUMNS)
    assert samples['columns'] == list(CSV_COLUMNS)
    data = point_data.columns(run, run.key(None), np.full(len(run), -1))
    legend = point_data.legends(run, data, [])
    lines = point_data.selection_rows(run, data, legend)
    assert lines[0] == samples['header'] and len(lines) == len(run) + 1
    rows = list(csv.DictReader(lines))
    assert [int(r['index']) for r in rows] == \
        run.table['index'].astype(int).tolist()
    assert [int(r['position']) for r in rows] == list(range(len(run)))
    assert [r['img_path'] for r in rows] == run.image_paths
    assert [int(r['gt_label']) for r in rows] == run.labels.tolist()
    assert [r['gt_class'] for r in rows] == \
        [str(c) for c in run.table['gt_class']]
    assert [int(r['pred_label']) for r in rows] == \
        run.table['pred_label'].astype(int).tolist()
    np.testing.assert_allclose([float(r['loss']) for r in rows],
                               run.table['loss'], rtol=1e-5)
    folder = np.frombuffer(base64.b64decode(samples['folder']), '<i4')
    assert len(folder) == len(samples['names']) == len(run)
    # the digits: one folder per class
    assert len(samples['folders']) == len(set(run.labels.tolist()))
    assert [samples['folders'][f] + name for f, name in
            zip(folder, samples['names'])] == run.image_paths
    prefix = run.manifest['data_prefix']
    assert [samples['ann_folders'][f] + name for f, name in
            zip(folder, samples['names'])] == \
        [annotation_path(p, prefix) for p in run.image_paths]


@pytest.mark.parametrize('prefix', [None, '/data/val', '/data/val/a'])
def test_annotation_paths_as_splits_makes_them(prefix):
    from tsneviz.explorer.data import annotation_paths
    from tsneviz.exporters.splits import annotation_path

    paths = ['/data/val/a/1.png', '/data/val/a/2.png', '/data/val/b/1.png',
             '/data/val/./a/3.png', '/data/other/x.png', '/top.png',
             'rel/a/1.png', 'plain.png', '', '/data/val/a/b c,"d".png']
    assert annotation_paths(paths, prefix) == \
        [annotation_path(p, prefix) for p in paths]


def test_numbers_spelled_as_javascript(browser):
    """Scores and losses in the CSV read as the page's script used to
    write them: ``String(Number(v.toPrecision(6)))`` of a float32."""
    from tsneviz.explorer.data import _number

    rng = np.random.default_rng(0)
    values = np.concatenate([
        rng.random(200), rng.random(200) ** 12, 10 ** rng.uniform(
            -12, 25, 300), [0, -0.0, 1, 100, 12.5, 1e-6, 9.999999e-7, 1e16,
                            1e21, -2.5e-5, 12.34375, 302886.5]]).astype(
                                np.float32)
    page = browser.new_page()
    spelled = page.evaluate(
        'vs => vs.map(v => String(Number(Math.fround(v).toPrecision(6))))',
        values.tolist())
    page.close()
    assert [_number(float(v)) for v in values] == spelled
    assert _number(float('nan')) == '' and _number(float('inf')) == ''


def test_page_escapes_what_it_inserts():
    """Text is escaped, data is JSON the script can parse back, and the
    config block stays where with_config finds it."""
    from bokeh.plotting import figure

    from tsneviz.explorer import CONFIG_ID, DEFAULT_CONFIG, with_config
    from tsneviz.explorer.page import render

    title = 'run <q7>&"\'</script>'
    meta = dict(n=1, legends=dict(legends=dict(gt=[dict(
        value=0, label='</script><script>alert(1)</script>')])))
    config = dict(DEFAULT_CONFIG, run='a</script>b')
    plot = figure()
    plot.scatter([0], [0])
    text = render(title, config, meta, plot)
    plain = render('run', DEFAULT_CONFIG, dict(n=1, legends=dict(
        legends=dict(gt=[]))), plot)
    assert '<q7>' not in text and '&lt;q7&gt;' in text
    # no inserted value ends a <script> element early
    assert text.count('</script>') == plain.count('</script>')
    assert 'correct / misclassified' not in text  # a mode without data
    # a run without label issues is not offered their filter
    assert 'suspected label errors only' not in text
    for element_id, expected in ((CONFIG_ID, config),
                                 ('tsneviz-data', meta)):
        start = text.index(f'<script id="{element_id}"')
        block = text[text.index('>', start) + 1:text.index('</script>',
                                                           start)]
        assert json.loads(block) == expected
    served = with_config(text, base_url='/runs/r/')
    start = served.index(f'<script id="{CONFIG_ID}"')
    block = served[served.index('>', start) + 1:served.index('</script>',
                                                             start)]
    assert json.loads(block) == dict(config, base_url='/runs/r/')
    assert text.endswith('</html>\n')


# ---- downloads at a run of awkward paths ------------------------------------

# folders and file names the CSV must quote (comma, quote, line break) or
# that only look odd (space, '#', non-ASCII, '.' segments), some outside
# the data prefix
ODD_FOLDERS = ('plain', 'a,b', 'quote"d', 'sp ace/\u00e9', './dot/.',
               '../elsewhere')
ODD_NAMES = ('{}.png', '{} a,b.png', '{}"q".png', '#{}\u00e9.png',
             '{}\nline.png', 'x{}')


def _odd_paths_run(run_dir, out_dir):
    """A copy of ``run_dir`` whose images lie at awkward paths under a new
    data prefix."""
    import shutil

    from tsneviz.rundir import Run, write_json

    shutil.copytree(run_dir, out_dir)
    run = Run(out_dir)
    prefix = osp.join(osp.dirname(out_dir), 'odd data', 'val')
    paths = []
    for i, src in enumerate(run.image_paths):
        folder = ODD_FOLDERS[i % len(ODD_FOLDERS)]
        name = ODD_NAMES[(i // len(ODD_FOLDERS)) % len(ODD_NAMES)]
        path = f'{prefix}/{folder}/{name.format(i)}'
        os.makedirs(osp.dirname(path), exist_ok=True)
        shutil.copyfile(src, path)
        paths.append(path)
    table = osp.join(out_dir, 'samples.csv')
    with open(table, newline='', encoding='utf-8') as f:
        rows = list(csv.reader(f))
    column = rows[0].index('img_path')
    for row, path in zip(rows[1:], paths):
        row[column] = path
    with open(table, 'w', newline='', encoding='utf-8') as f:
        csv.writer(f, lineterminator='\n').writerows(rows)
    write_json(osp.join(out_dir, 'run.json'),
               dict(run.manifest, data_prefix=prefix))
    return paths, prefix


def _lasso_all(page):
    """A real lasso drag along the inside of the plot's frame."""
    frame = page.evaluate('tsneviz.frameRect()')
    x0, y0 = frame['left'] + 3, frame['top'] + 3
    x1 = frame['left'] + frame['width'] - 3
    y1 = frame['top'] + frame['height'] - 3
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])
    page.mouse.move(x0, y0)
    page.mouse.down()
    for a, b in zip(corners[:-1], corners[1:]):
        for t in np.linspace(0, 1, 10)[1:]:
            page.mouse.move(*(a + t * (b - a)))
    page.mouse.up()


def test_downloads_at_awkward_paths(browser, demo_run, tmp_path):
    """The page's CSV and annotation downloads, joined from the folder
    table of samples.js, are byte for byte what Python makes:
    :func:`selection_rows` and :func:`write_annotation`."""
    from tsneviz.explorer import data as point_data
    from tsneviz.explorer import write_explorer
    from tsneviz.exporters.splits import annotation_path, write_annotation
    from tsneviz.rundir import Run

    run_dir = str(tmp_path / 'run')
    paths, prefix = _odd_paths_run(demo_run[0], run_dir)
    page_path = write_explorer(run_dir, k=9)
    run = Run(run_dir)
    assert run.image_paths == paths
    samples = _samples_js(run_dir)
    # each folder once; the rows hold file names only
    assert len(samples['folders']) == len(ODD_FOLDERS)
    assert all('/' not in name for name in samples['names'])

    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto(pathlib.Path(page_path).as_uri())
    _wait_ready(page)
    _lasso_all(page)
    page.wait_for_function(
        'Number(document.getElementById("tsneviz-selection")'
        '.dataset.count) > 0')
    chosen = page.evaluate('tsneviz.state.selection')
    assert chosen == list(range(len(run)))
    with page.expect_download() as info:
        page.click('#download-csv')
    got_csv = open(info.value.path(), 'rb').read()
    page.fill('#annotation-label', '3')
    with page.expect_download() as info:
        page.click('#download-annotation')
    got_ann = open(info.value.path(), 'rb').read()
    context.close()
    assert not errors, errors

    key = run.key(None)
    data = point_data.columns(run, key, np.full(len(run), -1))
    rows = point_data.selection_rows(
        run, data, point_data.legends(run, data, []))
    expected = '\n'.join([rows[0]] + [rows[1 + p] for p in chosen]) + '\n'
    assert got_csv == expected.encode('utf-8')
    # the awkward cells are really there, quoted where the csv module does
    assert b'"' + paths[1].encode() + b'"' in got_csv
    assert ('"' + paths[2].replace('"', '""') + '"').encode() in got_csv
    # the page's lines are annotation_path's; write_annotation refuses the
    # names with a line break, and writes the others as the page does
    lines = [f'{annotation_path(paths[p], prefix)} 3\n' for p in chosen]
    assert got_ann == ''.join(lines).encode('utf-8')
    assert b'../elsewhere/' in got_ann and b'dot/' in got_ann
    whole = [p for p in chosen if "\n" not in paths[p]]
    reference = str(tmp_path / 'reference.txt')
    write_annotation(reference, [paths[p] for p in whole], [3] * len(whole),
                     prefix)
    assert open(reference, 'rb').read() == ''.join(
        line for p, line in zip(chosen, lines) if p in whole).encode()


@pytest.mark.parametrize('prefix', [None, '/data/val', '/data/val/a'])
def test_split_paths_join_back(prefix):
    """Folder + file name is the path, annotation folder + file name its
    annotation path, for every kind of path."""
    from tsneviz.explorer.data import split_paths
    from tsneviz.exporters.splits import annotation_path

    paths = ['/data/val/a/1.png', '/data/val/a/2.png', '/data/val/b/1.png',
             '/data/val/./a/3.png', '/data/other/x.png', '/top.png',
             'rel/a/1.png', 'plain.png', '', '/data/val/a/b c,"d".png',
             '/data/val/a/', '/data/val/a/..', '/data/val/.', '/']
    folders, ann_folders, ids, names = split_paths(paths, prefix)
    assert ids.dtype == np.int32 and len(ids) == len(names) == len(paths)
    assert [folders[f] + name for f, name in zip(ids, names)] == paths
    assert [ann_folders[f] + name for f, name in zip(ids, names)] == \
        [annotation_path(p, prefix) for p in paths]
    # each entry once
    assert len(set(zip(folders, ann_folders))) == len(folders)


def test_concave_lasso_selects_what_is_inside(browser, demo_run):
    """A real lasso drag around a star (concave, edges crossing the same
    rows many times) selects exactly the shown points inside it, also
    after the legend hid a class."""
    from tsneviz.rundir import Run

    run_dir, page_path = demo_run
    run = Run(run_dir)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(pathlib.Path(page_path).as_uri())
    _wait_ready(page)
    frame = page.evaluate('tsneviz.frameRect()')
    cx = frame['left'] + frame['width'] * 0.5
    cy = frame['top'] + frame['height'] * 0.5
    big = 0.48 * min(frame['width'], frame['height'])
    angles = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    radii = np.where(np.arange(14) % 2, 0.25 * big, big)
    corners = np.stack([cx + radii * np.cos(angles),
                        cy + radii * np.sin(angles)], 1)
    path = np.concatenate([np.linspace(corners[i], corners[(i + 1) % 14], 6,
                                       endpoint=False) for i in range(14)])
    for hidden in (None, 0):
        if hidden is not None:
            # the view fits the shown points: they may move on screen
            page.locator('#tsneviz-legend .legend-item'
                         f'[data-value="{hidden}"]').click()
        page.wait_for_timeout(300)
        screen = np.array(page.evaluate(
            f'Array.from({{length: {len(run)}}}, '
            '(_, i) => tsneviz.toScreen(i)).map(p => [p.x, p.y])'))
        inside, near_edge = _inside(screen, path)
        sure = ~near_edge
        page.evaluate('tsneviz.lastSelect = null')
        page.mouse.move(*path[0])
        page.mouse.down()
        for x, y in path[1:]:
            page.mouse.move(x, y)
        page.mouse.move(*path[0])
        page.mouse.up()
        page.wait_for_function('tsneviz.lastSelect != null')
        selected = set(page.evaluate('tsneviz.state.selection'))
        visible = run.labels != hidden
        expected = set(np.flatnonzero(inside & sure & visible).tolist())
        assert expected and len(expected) < visible.sum()
        assert selected & set(np.flatnonzero(sure).tolist()) == expected
        assert selected <= set(np.flatnonzero(visible).tolist())
    context.close()
