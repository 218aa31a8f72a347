"""The interactive explorer: ``index.html`` in a run directory.

:func:`write_explorer` turns a complete run directory into a standalone
page that opens from ``file://`` with no network: a WebGL scatter of the
embedding (Bokeh, its JavaScript inlined), colour by label, prediction,
correct/misclassified, cluster or loss, a clickable legend and a filter,
a thumbnail on hover, the nearest neighbours of a clicked sample, and
lasso/box selections that download as a selection CSV (read by
:func:`tsneviz.exporters.selection.read_indices`) or as mmpretrain
annotation lines (as :func:`tsneviz.exporters.splits.write_annotation`
writes them).

What it writes into the run directory (all by relative path, so the page
stays small and the folder can be moved or served as it is):

- ``index.html``: the page: plot data (binary columns), the explorer's
  script and Bokeh's;
- ``thumbs/<t>.png``: one small PNG per distinct image, ``t`` the position
  (row of ``samples.csv``) of the first sample showing it, so for a run of
  distinct images ``thumbs/<position>.png``;
- ``explorer/neighbors.js`` and ``explorer/samples.js``: neighbours and
  image paths, loaded by the page on first use rather than at open (a
  ``<script>`` tag, which unlike ``fetch`` works from ``file://``).

The page reads its URLs from a JSON block,
``<script id="tsneviz-config" type="application/json">``, so a server can
serve the same page with other image URLs: see :data:`DEFAULT_CONFIG` and
:func:`with_config`. Elements carry ids and ``data-*`` attributes for
tests, and ``window.tsneviz`` exposes the Bokeh source and the
data-to-screen mapping (``toScreen(position)``).
"""
import base64
import html
import json
import os
import os.path as osp
import re
from typing import Dict, Optional, Sequence

import numpy as np

from tsneviz.errors import UserError
from tsneviz.rundir import Run, _atomic, read_manifest, update_manifest

__all__ = ['DEFAULT_CONFIG', 'CONFIG_ID', 'PAGE', 'write_explorer',
           'write_thumbnails', 'with_config']

PAGE = 'index.html'
THUMBS = 'thumbs'
DATA_DIR = 'explorer'
CONFIG_ID = 'tsneviz-config'

#: What the page's ``tsneviz-config`` block holds unless told otherwise.
#: URL templates fill ``{position}`` (row of ``samples.csv``), ``{index}``
#: (dataset index), ``{thumb}`` (thumbnail id) and ``{run}`` (the run
#: directory's name). Relative URLs are resolved against ``base_url``
#: (empty: the page's own folder); absolute ones (``/api/...``) are not.
DEFAULT_CONFIG = dict(
    base_url='',
    thumb_url='thumbs/{thumb}.png',
    # larger image of the focused sample; None shows the thumbnail
    image_url=None,
    neighbors_script='explorer/neighbors.js',
    samples_script='explorer/samples.js',
    # 'webgl', 'canvas', or 'auto': WebGL unless the browser's WebGL is a
    # software rasteriser (SwiftShader, llvmpipe: no GPU), where Bokeh's
    # 2-D canvas draws 100k points about 5x faster (bench_explorer.py)
    backend='auto',
)

#: Thumbnails drawn in the selection panel; the download holds them all.
SELECTION_SHOWN = 120

COLOR_MODES = (('gt', 'label'), ('pred', 'prediction'),
               ('correct', 'correct / misclassified'), ('cluster', 'cluster'),
               ('loss', 'loss'))


def _hex(rgba) -> str:
    return '#' + ''.join(f'{int(round(c * 255)):02x}' for c in rgba[:3])


def _json_script(element_id: str, obj) -> str:
    # '</' would end the <script> element early; JSON allows '<\/'.
    text = json.dumps(obj, separators=(',', ':')).replace('</', '<\\/')
    return (f'<script id="{element_id}" type="application/json">{text}'
            '</script>')


def with_config(page: str, **overrides) -> str:
    """The page's HTML with its URL config block updated.

    For a server that serves a run's ``index.html`` under another URL
    scheme, e.g. full images from an API.

    Args:
        page (str): HTML written by :func:`write_explorer`.
        **overrides: Keys of :data:`DEFAULT_CONFIG` (and ``run``).

    Returns:
        str: The HTML with the merged config.

    Examples:
        >>> page = open(osp.join(run_dir, 'index.html')).read()
        >>> served = with_config(page, base_url='/runs/r1/',
        ...                      image_url='/api/runs/r1/images/{index}')
    """
    pattern = re.compile(r'<script id="%s" type="application/json">(.*?)'
                         r'</script>' % CONFIG_ID, re.S)
    found = pattern.search(page)
    if found is None:
        raise UserError('this page has no tsneviz config block; write it '
                        'again with tsneviz.explorer.write_explorer')
    config = json.loads(found.group(1))
    unknown = set(overrides) - set(DEFAULT_CONFIG) - {'run'}
    if unknown:
        raise UserError(f'unknown explorer config keys: '
                        f'{", ".join(sorted(unknown))}')
    config.update(overrides)
    block = _json_script(CONFIG_ID, config)
    return page[:found.start()] + block + page[found.end():]


def _thumb_ids(paths: Sequence[str]) -> np.ndarray:
    """Per sample, the position of the first sample with the same image."""
    first: Dict[str, int] = {}
    return np.array([first.setdefault(p, i) for i, p in enumerate(paths)],
                    dtype=np.int32)


def write_thumbnails(run_dir: str, paths: Sequence[str], size: int = 64,
                     show_progress: bool = False) -> np.ndarray:
    """Write ``thumbs/<t>.png`` for each distinct image of a run.

    An image that is already there at the same ``size`` (recorded in
    ``run.json``'s ``explorer`` section) is not written again. Images are
    shrunk to fit ``size`` x ``size`` and never enlarged: the page scales
    small ones up with pixelated rendering, which keeps the files tiny.

    Args:
        run_dir (str): The run directory.
        paths (Sequence[str]): Image path of every sample, as in
            ``samples.csv``.
        size (int): Longest side in pixels. Defaults to 64.
        show_progress (bool): Draw a progress bar. Defaults to False.

    Returns:
        np.ndarray: int32 (N,) thumbnail id per sample, -1 where the image
        could not be read.

    Examples:
        >>> ids = write_thumbnails(run_dir, Run(run_dir).image_paths)
        >>> ids[:3]
        array([0, 1, 2], dtype=int32)
    """
    from PIL import Image

    from tsneviz.data.display import to_display
    from tsneviz.progress import progress_bar

    if int(size) != size or size < 8:
        raise UserError(f'thumbnail size must be an integer >= 8, got {size}')
    ids = _thumb_ids(paths)
    folder = osp.join(run_dir, THUMBS)
    os.makedirs(folder, exist_ok=True)
    try:
        previous = read_manifest(run_dir).get('explorer', {})
    except UserError:
        previous = {}
    reuse = previous.get('thumb_size') == size
    unique = np.flatnonzero(ids == np.arange(len(ids)))
    failed = set()
    with progress_bar('Thumbnails', len(unique), show_progress) as bar:
        for t in unique:
            out = osp.join(folder, f'{t}.png')
            if reuse and osp.isfile(out):
                bar(advance=1)
                continue
            try:
                with Image.open(paths[t]) as image:
                    image.draft('RGB', (size, size))  # fast JPEG shrink
                    image = to_display(image, grey=True)  # 16-bit scaled
                    image.thumbnail((size, size), Image.Resampling.LANCZOS)
                    _atomic(out, lambda f, im=image: im.save(
                        f, format='PNG', optimize=True))
            except (OSError, ValueError):
                # a missing or broken image should not cost the whole page
                failed.add(int(t))
            bar(advance=1)
    if failed:
        ids = np.where(np.isin(ids, list(failed)), -1, ids).astype(np.int32)
    return ids


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).astype(
        array.dtype.newbyteorder('<')).tobytes()).decode('ascii')


def _write_js(path: str, name: str, obj) -> str:
    text = f'window.{name} = {json.dumps(obj, separators=(",", ":"))};\n'
    return _atomic(path, lambda f: f.write(text.encode('utf-8')))


def _write_neighbors(run: Run, key: str, k: int,
                     show_progress: bool) -> dict:
    """``explorer/neighbors.js`` from the run's neighbours, computed if
    missing or too short."""
    from tsneviz.analysis.neighbors import compute_neighbors, load_neighbors

    n = len(run)
    k = min(int(k), n - 1)
    stored = load_neighbors(run, key)
    if stored is None or stored['indices'].shape[1] < k:
        compute_neighbors(run.path, k=k, key=key,
                          show_progress=show_progress)
        stored = load_neighbors(run.path, key)
    indices = stored['indices'][:, :k].astype(np.int32)
    distances = stored['distances'][:, :k].astype(np.float32)
    _write_js(osp.join(run.path, DATA_DIR, 'neighbors.js'),
              '__tsneviz_neighbors',
              dict(k=k, n=n, metric=stored['metric'],
                   indices=_b64(indices), distances=_b64(distances)))
    return dict(k=k, metric=stored['metric'])


def _write_samples(run: Run) -> None:
    """``explorer/samples.js``: image paths for the downloads.

    Paths are split into a folder table and file names (a dataset has few
    folders), and each folder is made relative to ``data_prefix`` once,
    exactly as :func:`tsneviz.exporters.splits.annotation_path` does.
    """
    from tsneviz.exporters.splits import annotation_path

    prefix = run.manifest.get('data_prefix')
    folders: Dict[str, int] = {}
    folder_of, names = [], []
    for path in run.image_paths:
        head, tail = path.rsplit('/', 1) if '/' in path else ('', path)
        folder_of.append(folders.setdefault(head, len(folders)))
        names.append(tail)
    dirs = list(folders)
    ann_dirs = []
    for d in dirs:
        # relpath('<prefix>/a/x') == relpath('<prefix>/a') + '/x'
        rel = annotation_path(f'{d}/x', prefix)
        ann_dirs.append(rel[:-1] if d else '')
    _write_js(osp.join(run.path, DATA_DIR, 'samples.js'),
              '__tsneviz_samples',
              dict(dirs=dirs, ann_dirs=ann_dirs, dir=folder_of, name=names))


def _numeric(run: Run, column: str, fill: float) -> np.ndarray:
    values = run.table.get(column)
    if values is None:
        return np.full(len(run), fill)
    if values.dtype == object:
        return np.array([float(v) if v not in ('', None) else fill
                         for v in values])
    return np.where(np.isnan(values), fill, values)


def _clusters(run: Run):
    """Cluster id per sample (-1 none) and the ids' display names."""
    values = run.table.get('cluster')
    if values is None:
        return None, []
    if values.dtype == object:
        names = sorted({str(v) for v in values if v != ''})
        lookup = {name: i for i, name in enumerate(names)}
        ids = np.array([lookup.get(str(v), -1) for v in values], np.int32)
        return ids, [(i, name) for i, name in enumerate(names)]
    ids = np.where(np.isnan(values), -1, values).astype(np.int32)
    present = sorted(set(ids.tolist()))
    return ids, [(c, 'noise' if c == -1 else str(c)) for c in present]


def _columns(run: Run, key: str, thumbs: np.ndarray) -> dict:
    coords = run.coords(key)
    if coords.shape[1] == 3:
        # the page is a 2-D scatter; a 3-D map is shown by its first axes
        coords = coords[:, :2]
    gt = run.labels.astype(np.int32)
    pred = _numeric(run, 'pred_label', -1).astype(np.int32)
    # -1: unknown, also for every sample when the model's classes are not
    # the dataset's (nothing to compare)
    same = run.label_space.correct(gt, pred)
    correct = np.full(len(gt), -1) if same is None else \
        np.where(pred < 0, -1, same.astype(np.int32))
    return dict(
        x=coords[:, 0].astype(np.float32), y=coords[:, 1].astype(np.float32),
        index=_numeric(run, 'index', -1).astype(np.int32),
        gt=gt, pred=pred, correct=correct.astype(np.int32),
        score=_numeric(run, 'score', np.nan).astype(np.float32),
        loss=_numeric(run, 'loss', np.nan).astype(np.float32),
        thumb=thumbs.astype(np.int32))


def _point_size(n: int) -> float:
    """Marker diameter in screen pixels: big for hundreds, 3 px at 10k+."""
    return float(np.clip(120.0 / np.sqrt(max(n, 1)), 3.0, 10.0))


def _legends(run: Run, data: dict, cluster_items) -> dict:
    from tsneviz.visualization import class_palette

    space = run.label_space
    # ground truth: ids of the dataset's classes; predictions: ids of the
    # model's, each list indexed by its own ids
    n_classes = max(space.dataset_size, int(data['gt'].max()) + 1)
    palette = [_hex(c) for c in class_palette(n_classes)]
    names = [space.dataset_name(i) for i in range(n_classes)]
    n_pred = max(space.model_size or 0, int(data['pred'].max()) + 1)
    pred_names = [space.model_name(j) for j in range(n_pred)]
    pred_palette = _pred_palette(space, palette, data['pred'], n_pred)

    def counts(values):
        ids, n = np.unique(values, return_counts=True)
        return dict(zip(ids.tolist(), n.tolist()))

    gt_n, pred_n = counts(data['gt']), counts(data['pred'])
    legends = dict(
        gt=[dict(value=i, label=names[i], color=palette[i],
                 count=gt_n.get(i, 0)) for i in range(n_classes)
            if gt_n.get(i)],
        pred=[dict(value=j, label=pred_names[j], color=pred_palette[j],
                   count=pred_n.get(j, 0)) for j in range(n_pred)
              if pred_n.get(j)])
    if (data['correct'] >= 0).any():
        legends['correct'] = [
            dict(value=1, label='correct', color='#2ca02c',
                 count=int((data['correct'] == 1).sum())),
            dict(value=0, label='misclassified', color='#d62728',
                 count=int((data['correct'] == 0).sum()))]
    if cluster_items:
        cluster_palette = [_hex(c) for c in class_palette(
            max(c for c, _ in cluster_items) + 1)]
        cl_n = counts(data['cluster'])
        legends['cluster'] = [
            dict(value=c, label=name, count=cl_n.get(c, 0),
                 color='#9e9e9e' if c < 0 else cluster_palette[c])
            for c, name in cluster_items]
    return dict(names=names, palette=palette, pred_names=pred_names,
                pred_palette=pred_palette, legends=legends)


def _pred_palette(space, palette, pred, n_pred):
    """Colour of each model class: its dataset class's where matched.

    A model class that names a dataset class takes that class's colour, so
    the label and prediction modes agree; every other predicted class gets
    a colour of its own, and the rest (never predicted) grey.
    """
    from tsneviz.visualization import class_palette

    colors = ['#9e9e9e'] * n_pred
    if space.matched:
        for i, j in enumerate(space.to_model(np.arange(len(palette)))):
            if 0 <= j < n_pred:
                colors[j] = palette[i]
    taken = set(j for j in range(n_pred) if colors[j] != '#9e9e9e')
    others = [j for j in np.unique(pred).tolist()
              if j >= 0 and j not in taken]
    extra = class_palette(len(palette) + len(others))[len(palette):]
    for j, color in zip(others, extra):
        colors[j] = _hex(color)
    return colors


def _figure(data: dict, legend: dict, has_cluster: bool):
    """The Bokeh scatter with one mapper per colour mode, named for JS."""
    from bokeh.events import SelectionGeometry
    from bokeh.models import (BoxSelectTool, CDSView, ColumnDataSource,
                              CustomJS, HoverTool, IndexFilter,
                              LassoSelectTool, LinearColorMapper,
                              LogColorMapper, PanTool, ResetTool, TapTool,
                              WheelZoomTool)
    from bokeh.palettes import Viridis256
    from bokeh.plotting import figure

    n = len(data['x'])
    grey = '#9e9e9e'
    palette = legend['palette']
    mappers = dict(
        gt=LinearColorMapper(name='mapper-gt', palette=palette,
                             low=-0.5, high=len(palette) - 0.5,
                             low_color=grey, high_color=grey),
        pred=LinearColorMapper(name='mapper-pred',
                               palette=legend['pred_palette'],
                               low=-0.5,
                               high=len(legend['pred_palette']) - 0.5,
                               low_color=grey, high_color=grey),
        correct=LinearColorMapper(name='mapper-correct',
                                  palette=['#d62728', '#2ca02c'],
                                  low=-0.5, high=1.5, low_color=grey,
                                  high_color=grey))
    if has_cluster:
        colors = [item['color'] for item in legend['legends']['cluster']
                  if item['value'] >= 0]
        top = max([item['value'] for item in legend['legends']['cluster']]
                  + [0])
        full = [grey] * (top + 1)
        for item in legend['legends']['cluster']:
            if item['value'] >= 0:
                full[item['value']] = item['color']
        mappers['cluster'] = LinearColorMapper(
            name='mapper-cluster', palette=full or colors or [grey],
            low=-0.5, high=top + 0.5, low_color=grey, high_color=grey)
    loss = data['loss'][np.isfinite(data['loss'])]
    # loss spans decades (1e-4 for easy samples, 5+ for wrong ones): a log
    # scale from the 1st percentile keeps both ends apart
    low = float(max(np.percentile(loss, 1), 1e-6)) if len(loss) else 1e-3
    high = float(max(loss.max(), low * 10)) if len(loss) else 1.0
    mappers['loss'] = LogColorMapper(
        name='mapper-loss', palette=Viridis256, low=low, high=high,
        low_color=Viridis256[0], high_color=Viridis256[-1], nan_color=grey)
    legend['loss_range'] = [low, high]
    legend['loss_colors'] = [Viridis256[i] for i in range(0, 256, 32)] + \
        [Viridis256[-1]]

    source = ColumnDataSource(data=data, name='tsneviz-source')
    view = CDSView(filter=IndexFilter(name='tsneviz-filter'))
    # The select tools select no renderer: the page takes the lasso/box
    # geometry Bokeh reports (once, on release) and marks the points with
    # an overlay. Bokeh's own selection redraws every point with its
    # selection/nonselection glyphs: 2.7 s per lasso at 100k points here,
    # against about 50 ms for the overlay.
    lasso = LassoSelectTool(name='tool-lasso', continuous=False,
                            renderers=[])
    box = BoxSelectTool(name='tool-box', continuous=False, renderers=[])
    wheel = WheelZoomTool(name='tool-wheel')
    plot = figure(name='tsneviz-plot', output_backend='webgl',
                  sizing_mode='stretch_both', match_aspect=True,
                  tools=[lasso, box, PanTool(name='tool-pan'), wheel,
                         ResetTool()],
                  active_drag=lasso, active_scroll=wheel,
                  toolbar_location='above', min_border=10)
    plot.axis.visible = False
    plot.grid.visible = False
    plot.toolbar.logo = None
    alpha = 0.85 if n <= 10_000 else 0.6
    points = plot.scatter('x', 'y', source=source, view=view,
                          name='tsneviz-points', size=_point_size(n),
                          fill_color=dict(field='gt',
                                          transform=mappers['gt']),
                          line_color=None, fill_alpha=alpha)
    # the selection, and rings around the focused sample and its
    # neighbours; none of them hit-tested
    chosen = ColumnDataSource(data=dict(x=[], y=[]), name='tsneviz-chosen')
    plot.scatter('x', 'y', source=chosen, size=_point_size(n) + 2,
                 fill_alpha=0, line_color='#000000', line_width=1.2,
                 line_alpha=0.8)
    focus = ColumnDataSource(data=dict(x=[], y=[]), name='tsneviz-focus')
    near = ColumnDataSource(data=dict(x=[], y=[]), name='tsneviz-near')
    plot.scatter('x', 'y', source=near, size=max(_point_size(n) + 8, 12),
                 fill_alpha=0, line_color='#ff7f0e', line_width=2)
    plot.scatter('x', 'y', source=focus, size=max(_point_size(n) + 12, 16),
                 fill_alpha=0, line_color='#000000', line_width=3)
    # The page's script does the work; these only forward Bokeh's events.
    plot.add_tools(
        HoverTool(name='tool-hover', renderers=[points], tooltips=None,
                  callback=CustomJS(code='window.tsneviz.onHover(cb_data)')),
        TapTool(name='tool-tap', renderers=[points], behavior='inspect',
                callback=CustomJS(code='window.tsneviz.onTap(cb_data)')))
    plot.js_on_event(SelectionGeometry, CustomJS(
        code='window.tsneviz.onGeometry(cb_obj)'))
    # mappers not in use are still in the document, found by name from JS
    plot.tags = list(mappers.values())
    return plot


def _page(title: str, config: dict, meta: dict, item: dict) -> str:
    from bokeh.resources import Resources

    # bokeh core + its WebGL part only: no widgets/tables/mathjax (-60%)
    resources = Resources(mode='inline', components=['bokeh', 'bokeh-gl'])
    options = ''.join(f'<option value="{value}">{html.escape(label)}'
                      '</option>' for value, label in COLOR_MODES
                      if value not in ('cluster', 'correct') or value in
                      meta['legends']['legends'])
    return _TEMPLATE.format(
        title=html.escape(title), css=_CSS, options=options,
        config=_json_script(CONFIG_ID, config),
        data=_json_script('tsneviz-data', meta),
        item=_json_script('tsneviz-plot-item', item),
        bokeh=resources.render_js(), script=_SCRIPT)


def write_explorer(run_dir: str, key: Optional[str] = None, k: int = 9,
                   thumb_size: int = 64, base_url: Optional[str] = None,
                   image_url: Optional[str] = None,
                   show_progress: bool = False) -> str:
    """Write the interactive explorer ``index.html`` of a run directory.

    Also writes the thumbnails and the page's data files (see the module
    docstring), computes the run's nearest neighbours in feature space
    (``neighbors_<key>.npz``) when they are missing or fewer than ``k``,
    and records an ``explorer`` section and the outputs in ``run.json``,
    last.

    Args:
        run_dir (str): A complete run directory.
        key (str, optional): Feature key whose map and neighbours to show;
            default the run's first.
        k (int): Neighbours shown for a clicked sample. Defaults to 9.
        thumb_size (int): Longest side of a thumbnail in pixels. Defaults
            to 64.
        base_url (str, optional): Prefix of the page's relative URLs; None
            resolves them against the page's folder (what ``file://``
            needs).
        image_url (str, optional): URL template of a larger image of the
            focused sample, e.g. ``'/api/runs/{run}/images/{index}'``;
            None shows its thumbnail.
        show_progress (bool): Draw progress bars. Defaults to False.

    Returns:
        str: Path of ``index.html``.

    Examples:
        >>> page = write_explorer('work_dirs/digits/tsne_20261123_144017')
        >>> print('file://' + osp.abspath(page))
        file:///.../tsne_20261123_144017/index.html
    """
    from bokeh.embed import json_item

    run = Run(run_dir)
    key = run.key(key)
    if len(run) < 2:
        raise UserError(f'{run_dir} has {len(run)} sample; the explorer '
                        'needs at least 2')
    if int(k) != k or k < 1:
        raise UserError(f'k must be a positive integer, got {k}')
    os.makedirs(osp.join(run_dir, DATA_DIR), exist_ok=True)
    thumbs = write_thumbnails(run_dir, run.image_paths, thumb_size,
                              show_progress)
    neighbors = _write_neighbors(run, key, k, show_progress)
    _write_samples(run)

    data = _columns(run, key, thumbs)
    cluster, cluster_items = _clusters(run)
    data['cluster'] = (cluster if cluster is not None
                       else np.full(len(run), -1, np.int32))
    legend = _legends(run, data, cluster_items)
    plot = _figure(data, legend, cluster is not None)
    name = osp.basename(osp.normpath(run_dir))
    config = dict(DEFAULT_CONFIG, run=name)
    if base_url is not None:
        config['base_url'] = base_url
    if image_url is not None:
        config['image_url'] = image_url
    meta = dict(run=name, key=key, n=len(run), k=neighbors['k'],
                metric=neighbors['metric'],
                has_predictions=run.has_predictions,
                data_prefix=run.manifest.get('data_prefix'),
                selection_shown=SELECTION_SHOWN, legends=legend)
    page = _page(f'tsneviz explorer: {name} ({key})', config, meta,
                 json_item(plot))
    path = osp.join(run_dir, PAGE)
    _atomic(path, lambda f: f.write(page.encode('utf-8')))

    thumb_files = sorted(f'{THUMBS}/{t}.png' for t in set(thumbs.tolist())
                         if t >= 0)
    update_manifest(run_dir, {'explorer': dict(
        page=PAGE, key=key, k=neighbors['k'], metric=neighbors['metric'],
        thumb_size=int(thumb_size), n_thumbnails=len(thumb_files),
        page_bytes=len(page.encode('utf-8')))},
        outputs=[PAGE, f'{DATA_DIR}/neighbors.js', f'{DATA_DIR}/samples.js']
        + thumb_files)
    return path


_CSS = """
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; font: 13px/1.35 system-ui, sans-serif;
  color: #222; }
body { display: flex; flex-direction: column; }
header { display: flex; gap: 16px; align-items: center; padding: 6px 10px;
  border-bottom: 1px solid #ddd; flex-wrap: wrap; }
header h1 { font-size: 15px; margin: 0; }
main { flex: 1; display: flex; min-height: 0; }
#tsneviz-plot { flex: 1; min-width: 0; position: relative; }
aside { width: 380px; overflow-y: auto; border-left: 1px solid #ddd;
  padding: 6px 10px; }
aside h2 { font-size: 13px; margin: 10px 0 4px; }
#tsneviz-legend { list-style: none; margin: 0; padding: 0;
  columns: 2; }
.legend-item { cursor: pointer; user-select: none; padding: 1px 2px; }
.legend-item.off { opacity: 0.35; text-decoration: line-through; }
.swatch { display: inline-block; width: 11px; height: 11px;
  border-radius: 50%; margin-right: 4px; vertical-align: -1px; }
.count { color: #777; }
#tsneviz-colorbar { height: 12px; margin: 4px 0; display: none; }
.colorbar-labels { display: flex; justify-content: space-between;
  color: #555; }
.grid { display: flex; flex-wrap: wrap; gap: 4px; }
.sample { margin: 0; width: 84px; font-size: 11px; text-align: center;
  cursor: pointer; border: 2px solid transparent; border-radius: 3px; }
.sample.wrong { border-color: #d62728; }
.sample img, .sample .noimg { width: 76px; height: 76px;
  object-fit: contain; image-rendering: pixelated; background: #f3f3f3; }
.sample figcaption { white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
#focus-sample .sample { width: 160px; }
#focus-sample .sample img { width: 152px; height: 152px; }
#tsneviz-hover { position: fixed; pointer-events: none; z-index: 10;
  background: #fff; border: 1px solid #999; border-radius: 4px;
  padding: 4px; box-shadow: 0 2px 6px rgba(0, 0, 0, .2); }
#tsneviz-hover img { width: 96px; height: 96px; object-fit: contain;
  image-rendering: pixelated; display: block; }
.muted { color: #777; }
.error { color: #d62728; }
button:disabled { opacity: .5; }
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header id="tsneviz-header">
  <h1>{title}</h1>
  <label>Colour by <select id="color-by">{options}</select></label>
  <label>Show <select id="filter">
    <option value="all">all samples</option>
    <option value="misclassified">misclassified only</option>
    <option value="correct">correctly classified only</option>
  </select></label>
  <span id="visible-count" class="muted"></span>
  <span id="tsneviz-status" class="muted">loading…</span>
</header>
<main>
  <div id="tsneviz-plot"></div>
  <aside>
    <section id="tsneviz-legend-panel">
      <h2>Legend <button id="legend-all">all</button>
        <button id="legend-none">none</button></h2>
      <ul id="tsneviz-legend"></ul>
      <div id="tsneviz-colorbar"></div>
      <div id="tsneviz-colorbar-labels" class="colorbar-labels"></div>
    </section>
    <section id="tsneviz-focus" data-position="">
      <h2>Nearest neighbours <span class="muted">(click a point)</span></h2>
      <div id="focus-sample"></div>
      <div id="tsneviz-neighbors" class="grid"></div>
    </section>
    <section id="tsneviz-selection" data-count="0">
      <h2>Selection: <span id="selection-count">0</span> samples
        <span class="muted">(lasso / box)</span></h2>
      <div>
        <button id="selection-clear" disabled>Clear</button>
        <button id="download-csv" disabled>Download CSV</button>
        <input id="annotation-label" size="8" placeholder="label">
        <button id="download-annotation" disabled>Download annotation
        </button>
        <div id="annotation-error" class="error"></div>
      </div>
      <div id="selection-grid" class="grid"></div>
    </section>
  </aside>
</main>
<div id="tsneviz-hover" hidden></div>
{config}
{data}
{item}
{bokeh}
<script>{script}</script>
</body>
</html>
"""

_SCRIPT = r"""
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const readJson = (id) => JSON.parse($(id).textContent);
  // a server may set window.TSNEVIZ_CONFIG before this script runs
  const config = Object.assign(readJson('tsneviz-config'),
                               window.TSNEVIZ_CONFIG || {});
  const meta = readJson('tsneviz-data');
  const T = window.tsneviz = {config, meta, ready: false,
    state: {mode: 'gt', filter: 'all', focus: null, selection: [],
            hidden: {gt: new Set(), pred: new Set(), correct: new Set(),
                     cluster: new Set()}}};

  function resolve(url) {
    // absolute URLs (scheme or leading slash) are left alone
    return /^([a-z][a-z0-9+.-]*:|\/)/i.test(url) ? url
      : (config.base_url || '') + url;
  }
  function fill(template, pos) {
    const d = T.source.data;
    return template.replace(/\{(\w+)\}/g, (m, name) => {
      if (name === 'position') return String(pos);
      if (name === 'index') return String(d.index[pos]);
      if (name === 'thumb') return String(d.thumb[pos]);
      if (name === 'run') return encodeURIComponent(config.run);
      return m;
    });
  }
  T.thumbUrl = (pos) => T.source.data.thumb[pos] < 0 ? null
    : resolve(fill(config.thumb_url, pos));
  T.imageUrl = (pos) => config.image_url
    ? resolve(fill(config.image_url, pos)) : T.thumbUrl(pos);

  // Data the page needs only on demand: a <script> element, because
  // fetch() and XHR of file:// URLs are blocked by browsers.
  const loading = {};
  function loadScript(url, name) {
    if (!loading[name]) {
      loading[name] = new Promise((ok, fail) => {
        if (window[name]) return ok(window[name]);
        const s = document.createElement('script');
        s.src = resolve(url);
        s.onload = () => ok(window[name]);
        s.onerror = () => fail(new Error('cannot load ' + s.src));
        document.head.appendChild(s);
      });
    }
    return loading[name];
  }
  function decode(b64, Type) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }
  let nnCache = null;
  T.neighbors = async function () {
    if (!nnCache) {
      const raw = await loadScript(config.neighbors_script,
                                   '__tsneviz_neighbors');
      nnCache = {k: raw.k, metric: raw.metric,
                 indices: decode(raw.indices, Int32Array),
                 distances: decode(raw.distances, Float32Array)};
    }
    return nnCache;
  };
  T.samples = () => loadScript(config.samples_script, '__tsneviz_samples');

  // ---- formatting -------------------------------------------------------
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;',
    '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]);
  const className = (id) => id < 0 ? '–'
    : (meta.legends.names[id] !== undefined ? meta.legends.names[id]
       : String(id));
  // predictions are ids of the model's classes, which may not be the
  // dataset's (see label_space in run.json)
  const predName = (id) => id < 0 ? '–'
    : (meta.legends.pred_names[id] !== undefined
       ? meta.legends.pred_names[id] : 'model:' + id);
  const num = (v) => Number.isFinite(v) ? String(Number(v.toPrecision(6)))
    : '';
  function card(pos, extra, cls) {
    const d = T.source.data;
    const url = T.thumbUrl(pos);
    const wrong = d.correct[pos] === 0 ? ' wrong' : '';
    const img = url ? `<img src="${esc(url)}" alt="sample ${d.index[pos]}">`
      : '<div class="noimg">no image</div>';
    return `<figure class="sample${wrong} ${cls || ''}" data-position="${pos}"` +
      ` data-index="${d.index[pos]}" data-gt="${d.gt[pos]}"` +
      ` data-pred="${d.pred[pos]}">${img}<figcaption>${extra || ''}` +
      `</figcaption></figure>`;
  }
  function details(pos) {
    const d = T.source.data;
    let s = `#${d.index[pos]} label <b>${esc(className(d.gt[pos]))}</b>`;
    if (meta.has_predictions) {
      s += `<br>pred <b>${esc(predName(d.pred[pos]))}</b>` +
        ` score ${num(d.score[pos])}<br>loss ${num(d.loss[pos])}`;
    }
    return s;
  }

  // ---- mapping between data and screen ----------------------------------
  T.toCanvas = function (pos) {
    const f = T.plotView.frame;
    return [f.x_scale.compute(T.source.data.x[pos]),
            f.y_scale.compute(T.source.data.y[pos])];
  };
  T.canvasRect = () => T.plotView.canvas_view.el.getBoundingClientRect();
  // page (client) coordinates of a point, for mouse events
  T.toScreen = function (pos) {
    const r = T.canvasRect();
    const [sx, sy] = T.toCanvas(pos);
    return {x: r.left + sx, y: r.top + sy};
  };
  T.frameRect = function () {
    const r = T.canvasRect();
    const b = T.plotView.frame.bbox;
    return {left: r.left + b.left, top: r.top + b.top, width: b.width,
            height: b.height};
  };
  T.visible = function () {
    const idx = T.filter.indices;
    if (idx == null) return Array.from({length: meta.n}, (_, i) => i);
    return Array.from(idx);
  };
  function nearest(candidates, sx, sy) {
    const f = T.plotView.frame, d = T.source.data;
    let best = -1, bestD = Infinity;
    for (const i of candidates) {
      const dx = f.x_scale.compute(d.x[i]) - sx;
      const dy = f.y_scale.compute(d.y[i]) - sy;
      const dd = dx * dx + dy * dy;
      if (dd < bestD) { bestD = dd; best = i; }
    }
    return best;
  }

  // ---- hover --------------------------------------------------------------
  const hover = $('tsneviz-hover');
  T.onHover = function (cb) {
    const hits = cb.index ? cb.index.indices : [];
    if (!hits || !hits.length) { hover.hidden = true; return; }
    const g = cb.geometry;
    const pos = nearest(hits, g.sx, g.sy);
    if (hover.dataset.position !== String(pos)) {
      hover.innerHTML = card(pos, details(pos), 'hover-card');
      hover.dataset.position = String(pos);
    }
    const r = T.canvasRect();
    const x = r.left + g.sx + 14, y = r.top + g.sy + 14;
    hover.style.left = Math.min(x, window.innerWidth - 130) + 'px';
    hover.style.top = Math.min(y, window.innerHeight - 170) + 'px';
    hover.hidden = false;
    const last = T.lastHover = {position: pos, at: performance.now()};
    requestAnimationFrame(() => { last.paintedAt = performance.now(); });
  };

  // ---- focus and neighbours ----------------------------------------------
  T.onTap = function (cb) {
    const g = cb.geometries;
    const pos = nearest(T.visible(), g.sx, g.sy);
    if (pos >= 0) T.focus(pos);
  };
  T.focus = async function (pos) {
    const d = T.source.data;
    T.state.focus = pos;
    const panel = $('tsneviz-focus');
    panel.dataset.position = String(pos);
    panel.dataset.ready = '';
    const url = T.imageUrl(pos);
    $('focus-sample').innerHTML = card(pos, details(pos), 'focus-card')
      .replace(/<img src="[^"]*"/, url ? `<img src="${esc(url)}"` : '$&');
    const nn = await T.neighbors();
    if (T.state.focus !== pos) return;  // focus moved on meanwhile
    const k = Math.min(meta.k, nn.k);
    const items = [];
    const xs = [], ys = [];
    for (let j = 0; j < k; j++) {
      const p = nn.indices[pos * nn.k + j];
      const dist = nn.distances[pos * nn.k + j];
      items.push(card(p, `${esc(className(d.gt[p]))}` +
        (meta.has_predictions ? ` → ${esc(predName(d.pred[p]))}` : '') +
        ` · ${num(dist)}`, 'neighbor').replace('<figure ',
        `<figure data-rank="${j + 1}" data-distance="${dist}" `));
      xs.push(d.x[p]); ys.push(d.y[p]);
    }
    $('tsneviz-neighbors').innerHTML = items.join('');
    T.nearSource.data = {x: xs, y: ys};
    T.focusSource.data = {x: [d.x[pos]], y: [d.y[pos]]};
    panel.dataset.ready = '1';
  };
  $('tsneviz-neighbors').addEventListener('click', (ev) => {
    const el = ev.target.closest('.sample');
    if (el) T.focus(Number(el.dataset.position));
  });
  $('selection-grid').addEventListener('click', (ev) => {
    const el = ev.target.closest('.sample');
    if (el) T.focus(Number(el.dataset.position));
  });

  // ---- selection ----------------------------------------------------------
  // Points inside the lasso polygon / box, in screen space as Bokeh's own
  // hit test does; hidden points (legend, filter) are not selectable.
  function inPolygon(px, py, xs, ys) {
    let inside = false;
    for (let i = 0, j = xs.length - 1; i < xs.length; j = i++) {
      if ((ys[i] > py) !== (ys[j] > py) &&
          px < (xs[j] - xs[i]) * (py - ys[i]) / (ys[j] - ys[i]) + xs[i]) {
        inside = !inside;
      }
    }
    return inside;
  }
  T.onGeometry = function (ev) {
    if (!ev.final) return;
    const g = ev.geometry, d = T.source.data, f = T.plotView.frame;
    const xs = f.x_scale, ys = f.y_scale;
    const idx = T.filter.indices;
    const count = idx == null ? meta.n : idx.length;
    const out = [];
    if (g.type === 'rect') {
      const x0 = Math.min(g.sx0, g.sx1), x1 = Math.max(g.sx0, g.sx1);
      const y0 = Math.min(g.sy0, g.sy1), y1 = Math.max(g.sy0, g.sy1);
      for (let j = 0; j < count; j++) {
        const i = idx == null ? j : idx[j];
        const sx = xs.compute(d.x[i]), sy = ys.compute(d.y[i]);
        if (sx >= x0 && sx <= x1 && sy >= y0 && sy <= y1) out.push(i);
      }
    } else if (g.type === 'poly') {
      const px = Array.from(g.sx), py = Array.from(g.sy);
      let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
      for (let k = 0; k < px.length; k++) {
        x0 = Math.min(x0, px[k]); x1 = Math.max(x1, px[k]);
        y0 = Math.min(y0, py[k]); y1 = Math.max(y1, py[k]);
      }
      for (let j = 0; j < count; j++) {
        const i = idx == null ? j : idx[j];
        const sx = xs.compute(d.x[i]), sy = ys.compute(d.y[i]);
        if (sx < x0 || sx > x1 || sy < y0 || sy > y1) continue;
        if (inPolygon(sx, sy, px, py)) out.push(i);
      }
    } else {
      return;
    }
    T.onSelect(out);
  };
  T.onSelect = function (indices) {
    const sel = Int32Array.from(indices).sort();
    T.state.selection = Array.from(sel);
    const d = T.source.data;
    T.chosenSource.data = {x: Array.from(sel, (p) => d.x[p]),
                           y: Array.from(sel, (p) => d.y[p])};
    $('selection-count').textContent = String(sel.length);
    const shown = Array.from(sel.subarray(0, meta.selection_shown));
    let body = shown.map((p) => card(p, esc(className(
      T.source.data.gt[p])), 'selected')).join('');
    if (sel.length > shown.length) {
      body += `<div class="muted">and ${sel.length - shown.length} more ` +
        '(all are in the downloads)</div>';
    }
    $('selection-grid').innerHTML = body;
    $('download-csv').disabled = !sel.length;
    $('download-annotation').disabled = !sel.length;
    $('selection-clear').disabled = !sel.length;
    const section = $('tsneviz-selection');
    section.dataset.count = String(sel.length);
    const last = T.lastSelect = {count: sel.length, at: performance.now()};
    requestAnimationFrame(() => { last.paintedAt = performance.now(); });
  };
  function csvCell(v) {
    const s = String(v);
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function save(text, name, type) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], {type}));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  function path(s, p) {
    const dir = s.dirs[s.dir[p]];
    return dir ? dir + '/' + s.name[p] : s.name[p];
  }
  function annPath(s, p) {
    const dir = s.ann_dirs[s.dir[p]];
    return dir ? dir + s.name[p] : s.name[p];
  }
  // the selection as tsneviz.exporters.selection.read_indices reads it
  T.selectionCsv = async function () {
    const s = await T.samples(), d = T.source.data;
    const rows = ['index,position,img_path,gt_label,gt_class,pred_label,' +
                  'pred_class,score,loss'];
    for (const p of T.state.selection) {
      const pred = d.pred[p];
      rows.push([d.index[p], p, path(s, p), d.gt[p], className(d.gt[p]),
        pred < 0 ? '' : pred, pred < 0 ? '' : predName(pred),
        num(d.score[p]), num(d.loss[p])].map(csvCell).join(','));
    }
    return rows.join('\n') + '\n';
  };
  // "relative/path label" lines, as tsneviz.exporters.splits writes them
  T.selectionAnnotation = async function (label) {
    const s = await T.samples();
    return T.state.selection.map((p) => `${annPath(s, p)} ${label}`)
      .join('\n') + '\n';
  };
  function parseLabel(text) {
    text = text.trim();
    if (/^\d+$/.test(text)) return Number(text);
    const id = meta.legends.names.indexOf(text);
    return id >= 0 ? id : null;
  }
  $('selection-clear').addEventListener('click', () => T.onSelect([]));
  $('download-csv').addEventListener('click', async () => {
    save(await T.selectionCsv(), 'selection.csv', 'text/csv');
  });
  $('download-annotation').addEventListener('click', async () => {
    const label = parseLabel($('annotation-label').value);
    const err = $('annotation-error');
    if (label === null) {
      err.textContent = 'type a class id (0, 1, …) or a class name';
      return;
    }
    err.textContent = '';
    save(await T.selectionAnnotation(label), `selection_label${label}.txt`,
         'text/plain');
  });

  // ---- colour, legend, filter ---------------------------------------------
  function drawLegend() {
    const mode = T.state.mode;
    const ul = $('tsneviz-legend'), bar = $('tsneviz-colorbar');
    const labels = $('tsneviz-colorbar-labels');
    if (mode === 'loss') {
      ul.innerHTML = '';
      const c = meta.legends.loss_colors;
      bar.style.display = 'block';
      bar.style.background = `linear-gradient(to right, ${c.join(',')})`;
      const [lo, hi] = meta.legends.loss_range;
      labels.innerHTML = `<span>≤ ${num(lo)}</span><span>loss (log)</span>` +
        `<span>≥ ${num(hi)}</span>`;
      return;
    }
    bar.style.display = 'none';
    labels.innerHTML = '';
    const hidden = T.state.hidden[mode];
    ul.innerHTML = (meta.legends.legends[mode] || []).map((it) =>
      `<li class="legend-item${hidden.has(it.value) ? ' off' : ''}"` +
      ` data-field="${mode}" data-value="${it.value}">` +
      `<span class="swatch" style="background:${it.color}"></span>` +
      `${esc(it.label)} <span class="count">${it.count}</span></li>`)
      .join('');
  }
  T.applyVisibility = function () {
    const d = T.source.data, h = T.state.hidden, f = T.state.filter;
    const out = [];
    for (let i = 0; i < meta.n; i++) {
      if (h.gt.has(d.gt[i]) || h.pred.has(d.pred[i]) ||
          h.correct.has(d.correct[i]) || h.cluster.has(d.cluster[i])) continue;
      if (f === 'misclassified' && d.correct[i] !== 0) continue;
      if (f === 'correct' && d.correct[i] !== 1) continue;
      out.push(i);
    }
    T.filter.indices = out.length === meta.n ? null : out;
    $('visible-count').textContent = `${out.length} of ${meta.n} shown`;
    $('visible-count').dataset.count = String(out.length);
  };
  T.setMode = function (mode) {
    T.state.mode = mode;
    const spec = {field: mode, transform: T.mappers[mode]};
    // selection glyphs left 'auto' follow the main glyph by themselves
    for (const g of [T.points.glyph, T.points.selection_glyph,
                     T.points.nonselection_glyph]) {
      if (g != null && typeof g === 'object') g.fill_color = spec;
    }
    drawLegend();
  };
  $('color-by').addEventListener('change', (ev) => T.setMode(ev.target.value));
  $('filter').addEventListener('change', (ev) => {
    T.state.filter = ev.target.value;
    T.applyVisibility();
  });
  $('tsneviz-legend').addEventListener('click', (ev) => {
    const li = ev.target.closest('.legend-item');
    if (!li) return;
    const set = T.state.hidden[li.dataset.field];
    const v = Number(li.dataset.value);
    set.has(v) ? set.delete(v) : set.add(v);
    drawLegend();
    T.applyVisibility();
  });
  function setAll(hide) {
    const mode = T.state.mode, set = T.state.hidden[mode];
    if (!set) return;
    set.clear();
    if (hide) for (const it of meta.legends.legends[mode]) set.add(it.value);
    drawLegend();
    T.applyVisibility();
  }
  $('legend-all').addEventListener('click', () => setAll(false));
  $('legend-none').addEventListener('click', () => setAll(true));
  $('tsneviz-plot').addEventListener('mouseleave', () => {
    hover.hidden = true;
  });

  // ---- start ----------------------------------------------------------------
  function softwareGl() {
    try {
      const gl = document.createElement('canvas').getContext('webgl');
      if (!gl) return true;
      const info = gl.getExtension('WEBGL_debug_renderer_info');
      const name = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL)
        : gl.getParameter(gl.RENDERER);
      T.glRenderer = String(name);
      return /swiftshader|llvmpipe|softpipe|software/i.test(T.glRenderer);
    } catch (err) {
      return true;
    }
  }
  const item = readJson('tsneviz-plot-item');
  const root = item.doc.roots.find((r) => r.id === item.root_id);
  if (config.backend === 'canvas' ||
      (config.backend === 'auto' && softwareGl())) {
    root.attributes.output_backend = 'canvas';
  }
  Bokeh.embed.embed_item(item, 'tsneviz-plot').then((views) => {
    const pv = views.get_by_id(item.root_id);
    const doc = pv.model.document;
    const byName = (n) => doc.get_model_by_name(n);
    T.plotView = pv;
    T.plot = pv.model;
    T.source = byName('tsneviz-source');
    T.points = byName('tsneviz-points');
    T.filter = byName('tsneviz-filter');
    T.focusSource = byName('tsneviz-focus');
    T.nearSource = byName('tsneviz-near');
    T.chosenSource = byName('tsneviz-chosen');
    T.mappers = {};
    for (const m of ['gt', 'pred', 'correct', 'cluster', 'loss']) {
      const mapper = byName('mapper-' + m);
      if (mapper) T.mappers[m] = mapper;
    }
    T.webgl = pv.canvas_view.webgl != null;
    drawLegend();
    $('visible-count').textContent = `${meta.n} of ${meta.n} shown`;
    $('visible-count').dataset.count = String(meta.n);
    // ready once the first frame is painted
    requestAnimationFrame(() => requestAnimationFrame(() => {
      T.readyAt = performance.now();
      T.ready = true;
      $('tsneviz-status').textContent = T.webgl ? 'WebGL'
        : 'canvas (no hardware WebGL)';
      document.body.dataset.ready = '1';
    }));
  }).catch((err) => {
    $('tsneviz-status').textContent = 'error: ' + err;
    document.body.dataset.error = String(err);
    throw err;
  });
})();
"""
