"""Per-point data of the explorer: plot columns, legends and data files.

Everything the page shows or downloads is computed here, so the page's
script only looks values up and joins them:

- :func:`columns`: the plot's columns (coordinates, labels, scores,
  thumbnail ids), sent inline as Bokeh binary columns;
- :func:`legends`: class names and colours of each colour mode;
- :func:`write_neighbors` and :func:`write_samples`: ``explorer/*.js``,
  loaded by the page on first use. ``samples.js`` holds what the
  selection CSV (columns of :data:`tsneviz.exporters.selection.CSV_COLUMNS`)
  and the annotation lines need beyond the plot's columns: each image
  folder once (as the CSV and as
  :func:`tsneviz.exporters.splits.annotation_path` spell it), each
  sample's folder id and file name, and the class-name cells. The page
  joins them into exactly the rows of :func:`selection_rows`.
"""
import base64
import csv
import io
import json
import os.path as osp
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Dict, List, Optional, Sequence

import numpy as np

from tsneviz.rundir import EXPLORER_DATA, Run, write_text

__all__ = ['DATA_DIR', 'columns', 'clusters', 'legends', 'write_neighbors',
           'write_samples', 'annotation_paths', 'selection_rows',
           'split_paths']

#: Folder of the page's lazily loaded data files, in the run directory.
DATA_DIR = EXPLORER_DATA

GREY = '#9e9e9e'


def _hex(rgba) -> str:
    return '#' + ''.join(f'{int(round(c * 255)):02x}' for c in rgba[:3])


def _numeric(run: Run, column: str, fill: float) -> np.ndarray:
    values = run.table.get(column)
    if values is None:
        return np.full(len(run), fill)
    if values.dtype == object:
        return np.array([float(v) if v not in ('', None) else fill
                         for v in values])
    return np.where(np.isnan(values), fill, values)


def clusters(run: Run):
    """Cluster id per sample (-1 none) and the ids' display names.

    Returns:
        tuple: int32 (N,) ids, or None when the run has no clusters, and a
        list of ``(id, name)``.
    """
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


def columns(run: Run, key: str, thumbs: np.ndarray,
            cluster: Optional[np.ndarray] = None) -> dict:
    """The plot's columns, one value per sample (row of ``samples.csv``).

    Args:
        run (Run): The run.
        key (str): Feature key whose map is shown.
        thumbs (np.ndarray): Thumbnail id per sample
            (:func:`~tsneviz.explorer.thumbnails.write_thumbnails`).
        cluster (np.ndarray, optional): Cluster id per sample
            (:func:`clusters`); None: no clusters. Defaults to None.

    Returns:
        dict: ``x``, ``y``, ``index``, ``gt``, ``pred``, ``correct`` (1, 0,
        or -1 unknown), ``score``, ``loss``, ``thumb``, ``cluster`` (-1
        none) and ``issue`` (1 a suspected label error, 0 not, -1 not
        computed), each a typed (N,) array; ``reliability`` (NaN
        unknown) where the run has a ``map_reliability`` column.
    """
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
        thumb=thumbs.astype(np.int32),
        cluster=(cluster if cluster is not None
                 else np.full(len(run), -1, np.int32)),
        issue=_numeric(run, 'label_issue', -1).astype(np.int32),
        **_reliability_column(run))


def _reliability_column(run: Run) -> dict:
    """``reliability``: the ``map_reliability`` column, where measured."""
    if 'map_reliability' not in run.table:
        return {}
    return dict(reliability=_numeric(run, 'map_reliability',
                                     np.nan).astype(np.float32))


def legends(run: Run, data: dict, cluster_items) -> dict:
    """Names, colours and counts of each colour mode's classes.

    Args:
        run (Run): The run.
        data (dict): :func:`columns`.
        cluster_items (list): ``(id, name)`` of the clusters
            (:func:`clusters`); empty for none.

    Returns:
        dict: ``names`` and ``palette`` (dataset classes), ``pred_names``
        and ``pred_palette`` (model classes) and ``legends``: per mode
        (``gt``, ``pred``, and ``correct``/``cluster`` where known) the
        items ``value``, ``label``, ``color``, ``count``.
    """
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
    items = dict(
        gt=[dict(value=i, label=names[i], color=palette[i],
                 count=gt_n.get(i, 0)) for i in range(n_classes)
            if gt_n.get(i)],
        pred=[dict(value=j, label=pred_names[j], color=pred_palette[j],
                   count=pred_n.get(j, 0)) for j in range(n_pred)
              if pred_n.get(j)])
    if (data['correct'] >= 0).any():
        items['correct'] = [
            dict(value=1, label='correct', color='#2ca02c',
                 count=int((data['correct'] == 1).sum())),
            dict(value=0, label='misclassified', color='#d62728',
                 count=int((data['correct'] == 0).sum()))]
    if cluster_items:
        cluster_palette = [_hex(c) for c in class_palette(
            max(c for c, _ in cluster_items) + 1)]
        cl_n = counts(data['cluster'])
        items['cluster'] = [
            dict(value=c, label=name, count=cl_n.get(c, 0),
                 color=GREY if c < 0 else cluster_palette[c])
            for c, name in cluster_items]
    return dict(names=names, palette=palette, pred_names=pred_names,
                pred_palette=pred_palette, legends=items)


def _pred_palette(space, palette, pred, n_pred):
    """Colour of each model class: its dataset class's where matched.

    A model class that names a dataset class takes that class's colour, so
    the label and prediction modes agree; every other predicted class gets
    a colour of its own, and the rest (never predicted) grey.
    """
    from tsneviz.visualization import class_palette

    colors = [GREY] * n_pred
    if space.matched:
        for i, j in enumerate(space.to_model(np.arange(len(palette)))):
            if 0 <= j < n_pred:
                colors[j] = palette[i]
    taken = set(j for j in range(n_pred) if colors[j] != GREY)
    others = [j for j in np.unique(pred).tolist()
              if j >= 0 and j not in taken]
    extra = class_palette(len(palette) + len(others))[len(palette):]
    for j, color in zip(others, extra):
        colors[j] = _hex(color)
    return colors


# ---- lazily loaded data files ---------------------------------------------

def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).astype(
        array.dtype.newbyteorder('<')).tobytes()).decode('ascii')


def _write_js(path: str, name: str, obj) -> str:
    # a <script> that sets a global, because fetch() and XHR of file://
    # URLs are blocked by browsers
    text = f'window.{name} = {json.dumps(obj, separators=(",", ":"))};\n'
    return write_text(path, text)


def write_neighbors(run: Run, key: str, k: int, show_progress: bool) -> dict:
    """``explorer/neighbors.js`` from the run's neighbours in feature space.

    The neighbours (``neighbors_<key>.npz``) are computed when missing or
    fewer than ``k``.

    Returns:
        dict: ``k`` (at most N - 1) and ``metric``.
    """
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


def annotation_paths(paths: Sequence[str],
                     data_prefix: Optional[str]) -> List[str]:
    """Each image path as an annotation file names it.

    Exactly :func:`tsneviz.exporters.splits.annotation_path` of every path,
    computed once per folder (a dataset has few): relpath of
    ``<folder>/<name>`` is relpath of ``<folder>/x`` with ``x`` replaced.

    Examples:
        >>> annotation_paths(['/d/val/3/1.png', '/d/val/5/1.png'], '/d/val')
        ['3/1.png', '5/1.png']
    """
    from tsneviz.exporters.splits import annotation_path

    folders: Dict[str, str] = {}
    out = []
    for path in paths:
        head, _, name = path.rpartition('/')
        if not head:  # 'a.png' or '/a.png': no folder to share
            out.append(annotation_path(path, data_prefix))
            continue
        rel = folders.get(head)
        if rel is None:
            rel = folders[head] = annotation_path(f'{head}/x',
                                                  data_prefix)[:-1]
        out.append(rel + name)
    return out


def _number(value: float) -> str:
    """A score or loss in the CSV: 6 significant digits, '' for NaN.

    Spelled as the page's script always spelled them (JavaScript's
    ``String(Number(v.toPrecision(6)))``), so a download reads the same as
    before the rows were made here.
    """
    if value != value or value in (np.inf, -np.inf):
        return ''
    if value == 0:
        return '0'  # also -0.0, which JavaScript writes as 0
    # toPrecision rounds the exact binary value half away from zero ('%g'
    # rounds half to even): 12.34375 is 12.3438
    exact = Decimal(value)
    rounded = float(exact.quantize(Decimal(1).scaleb(exact.adjusted() - 5),
                                   rounding=ROUND_HALF_UP))
    text = repr(rounded)
    if 'e' not in text:
        return text[:-2] if text.endswith('.0') else text
    if 1e-6 <= abs(rounded) < 1e21:  # where JavaScript writes no exponent
        return format(Decimal(text), 'f')
    return re.sub(r'e([+-])0*(\d)', r'e\1\2', text)


def selection_rows(run: Run, data: dict, legend: dict) -> List[str]:
    """The selection CSV's header and each sample's row, without line end.

    What the page's CSV download holds, made in Python: the reference its
    rows (joined in the page from :func:`write_samples`) are tested
    against, and a way to write the CSV without a browser.

    Args:
        run (Run): The run.
        data (dict): :func:`columns`.
        legend (dict): :func:`legends` (class names).

    Returns:
        list[str]: The header, then one row per sample (position order), in
        the columns of :data:`tsneviz.exporters.selection.CSV_COLUMNS`.

    Examples:
        >>> rows = selection_rows(run, data, legend)
        >>> rows[0]
        'index,position,img_path,gt_label,gt_class,pred_label,...'
    """
    from tsneviz.exporters.selection import CSV_COLUMNS

    names, pred_names = legend['names'], legend['pred_names']
    gt, pred = data['gt'].tolist(), data['pred'].tolist()
    values = dict(
        index=data['index'].tolist(),
        position=range(len(gt)),
        img_path=run.image_paths,
        gt_label=gt,
        gt_class=['\u2013' if g < 0 else names[g] if g < len(names)
                  else str(g) for g in gt],
        # no prediction: empty cells; predictions are ids of the model's
        # classes, which may not be the dataset's (tsneviz.labels)
        pred_label=['' if j < 0 else j for j in pred],
        pred_class=['' if j < 0 else pred_names[j] if j < len(pred_names)
                    else f'model:{j}' for j in pred],
        score=[_number(v) for v in data['score'].tolist()],
        loss=[_number(v) for v in data['loss'].tolist()])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')

    def line(cells) -> str:
        # the csv module quotes a cell with a comma, quote or line break
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()[:-1]

    return [line(CSV_COLUMNS)] + [
        line(cells) for cells in zip(*(values[c] for c in CSV_COLUMNS))]


def split_paths(paths: Sequence[str], data_prefix: Optional[str]):
    """Image paths as a folder table and each path's folder and file name.

    A dataset has few folders, so the page's data grows with the file
    names, not with the full paths. ``folders[f] + names[i]`` is path
    ``i`` and ``ann_folders[f] + names[i]`` its
    :func:`tsneviz.exporters.splits.annotation_path`, ``f`` its folder id.

    Args:
        paths (Sequence[str]): Image paths, one per sample.
        data_prefix (str, optional): Prefix the annotation paths are
            relative to; None leaves them as they are.

    Returns:
        tuple: ``folders`` and ``ann_folders`` (lists of str), int32 (N,)
        folder ids and the list of file names.

    Examples:
        >>> folders, ann_folders, ids, names = split_paths(
        ...     ['/d/val/3/1.png', '/d/val/5/1.png'], '/d/val')
        >>> folders, ann_folders, ids.tolist(), names
        (['/d/val/3/', '/d/val/5/'], ['3/', '5/'], [0, 1], ['1.png', '1.png'])
    """
    from tsneviz.exporters.splits import annotation_path

    parts = [path.rpartition('/') for path in paths]
    heads = [head + sep for head, sep, _ in parts]
    names = [name for _, _, name in parts]
    # dict keeps first-seen order: ids from a C-level lookup, no row loop
    folders = list(dict.fromkeys(heads))
    lookup = {folder: i for i, folder in enumerate(folders)}
    ids = np.fromiter(map(lookup.__getitem__, heads), np.int32,
                      len(heads))
    # relpath of '<folder>x' is relpath of '<folder><name>' with 'x'
    # replaced, except for the names relpath would normalise away
    ann_folders = [annotation_path(folder + 'x', data_prefix)[:-1]
                   for folder in folders]
    odd = [i for i, name in enumerate(names) if name in ('', '.', '..')]
    entries = {pair: i for i, pair in enumerate(zip(folders, ann_folders))}
    for i in odd:
        # an entry holding the whole path (both spellings), no file name
        pair = (paths[i], annotation_path(paths[i], data_prefix))
        if pair not in entries:
            entries[pair] = len(folders)
            folders.append(pair[0])
            ann_folders.append(pair[1])
        ids[i] = entries[pair]
        names[i] = ''
    return folders, ann_folders, ids, names


def _csv_cells(texts: Sequence[str]) -> List[str]:
    """Each text as a cell of a row :func:`selection_rows` writes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    cells = []
    for text in texts:
        buffer.seek(0)
        buffer.truncate()
        # a second cell: the csv module quotes a lone empty cell
        writer.writerow([text, ''])
        cells.append(buffer.getvalue()[:-2])
    return cells


def write_samples(run: Run, data: dict, legend: dict) -> None:
    """``explorer/samples.js``: what the selection downloads need.

    The page makes each selected sample's CSV row (:func:`selection_rows`)
    from the plot's columns and these, and its annotation line from the
    annotation folder and file name (:func:`split_paths`, relative to the
    run's ``data_prefix``):

    - ``header`` and ``columns``: the CSV's header and column names;
    - ``gt_class`` and ``pred_class``: the cell of each class id;
    - ``folders``, ``ann_folders``: each image folder once; ``quoted``:
      whether a cell with a path in that folder is quoted, ``name_quoted``
      the positions whose file name makes it quoted (the csv module
      decides: a comma, quote or line break);
    - ``folder``: int32 folder id per sample (base64), ``names``: file
      name per sample.
    """
    from tsneviz.data.paths import resolve
    from tsneviz.exporters.selection import CSV_COLUMNS

    prefix = resolve(run.manifest.get('data_prefix'), run.manifest,
                     strict=False)
    folders, ann_folders, ids, names = split_paths(run.image_paths, prefix)
    gt_class = _csv_cells(legend['names'])
    pred_class = _csv_cells(legend['pred_names'])
    quoted = [cell != folder
              for cell, folder in zip(_csv_cells(folders), folders)]
    # a file name needs quotes only for these characters (what the csv
    # module quotes); checked with the module on the few names that have
    # one, so it stays the judge
    special = re.compile('[,"\r\n]')
    maybe = [i for i, name in enumerate(names) if special.search(name)]
    name_quoted = [i for i, cell in zip(maybe, _csv_cells(
        [names[i] for i in maybe])) if cell != names[i]]
    _write_js(osp.join(run.path, DATA_DIR, 'samples.js'),
              '__tsneviz_samples',
              dict(header=','.join(CSV_COLUMNS), columns=list(CSV_COLUMNS),
                   gt_class=gt_class, pred_class=pred_class,
                   folders=folders, ann_folders=ann_folders, quoted=quoted,
                   name_quoted=name_quoted, folder=_b64(ids), names=names))


# ---- placed layers ----------------------------------------------------------

def placed_columns(run: Run, key: str) -> List[dict]:
    """The placed layers of ``key``'s map (``tools/place.py``), for the plot.

    Returns:
        list[dict]: Per layer ``name``, ``n`` and ``data``: the columns
        ``x``, ``y``, ``path``, ``label``, ``pred`` and ``nn`` (the paths of
        its three nearest map samples), text where the layer has none.
    """
    from tsneviz.analysis.placement import PATH_SEPARATOR, placed_layers
    from tsneviz.rundir import coord_column

    layers = []
    for layer in placed_layers(run):
        table = layer['table']
        if layer.get('key') != key or coord_column(key, 'x') not in table:
            continue
        n = len(table[coord_column(key, 'x')])
        blank = [''] * n
        nn = [', '.join(osp.basename(p) for p in cell.split(
            PATH_SEPARATOR)[:3]) for cell in table.get('neighbor_paths',
                                                        blank)]
        layers.append(dict(name=layer['name'], n=n, data=dict(
            x=np.asarray(table[coord_column(key, 'x')], np.float32),
            y=np.asarray(table[coord_column(key, 'y')], np.float32),
            path=list(table.get('img_path', blank)),
            label=list(table.get('gt_class', blank)),
            pred=list(table.get('pred_class', blank)), nn=nn)))
    return layers
