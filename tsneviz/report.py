"""A one-page report of a run: metrics, silhouette, errors, clusters, plots.

:func:`write_report` reads a complete run directory and writes two files
into it: ``report.md`` (images referenced by relative path, so it renders
next to the PNGs, e.g. on GitHub) and ``report.html`` (self-contained: the
images are inlined as base64 ``data:`` URIs, plain HTML and CSS, no script,
no external resource, so it can be mailed or archived on its own). With
predictions it also writes ``confusion_matrix.png``. A run without a
classification head gets the same sections, saying so, and never numbers
made up for it.

Both files are rendered from one list of sections, so they always hold the
same content.
"""
import base64
import glob
import html
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from tsneviz.rundir import (Run, _atomic, read_table, step_command,
                            update_manifest)

REPORT_MD = 'report.md'
REPORT_HTML = 'report.html'
CONFUSION_PNG = 'confusion_matrix.png'
CLUSTERS_CSV = 'clusters.csv'

#: silhouette_samples builds an N x N distance matrix; above this many rows
#: a class-stratified, seeded subsample is used (5000 rows: ~200 MB).
SILHOUETTE_MAX_SAMPLES = 5000
#: Rows of the worst-classes and high-loss-clusters tables.
TOP_ROWS = 10
#: Above this many classes the confusion matrix cells carry no numbers:
#: they would overlap.
CONFUSION_MAX_ANNOTATED = 30

NO_HEAD = ('no classification head: this run has no predictions, so there '
           'is nothing to report here')
OTHER_SPACE = ('the model predicts its own classes, not the dataset\'s ({}), '
               'so predictions are not compared with the truth; see '
               '"Predictions by class"')
CLUSTER_COLUMNS = ('rank', 'cluster', 'size', 'purity', 'dominant_class',
                   'dominant_share', 'classes', 'error_rate', 'mean_loss',
                   'top_confusions')


# ---------------------------------------------------------------- document
class Paragraph(NamedTuple):
    text: str


class Table(NamedTuple):
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


class Image(NamedTuple):
    file: str  # a PNG in the run directory, by name
    alt: str


class Section(NamedTuple):
    title: str
    blocks: Sequence


# ---------------------------------------------------------------- analysis
def _stratified_rows(labels: np.ndarray, max_samples: Optional[int],
                     seed: int) -> np.ndarray:
    """Sorted rows of a per-class subsample keeping every class present."""
    n = len(labels)
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        # Proportional share, but at least two rows so a small class still
        # gets a silhouette (one member alone scores 0 by definition).
        take = min(len(members),
                   max(2, int(round(max_samples * len(members) / n))))
        rows.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(rows))


def silhouette_by_class(features, embedding, labels,
                        metric: str = 'euclidean',
                        max_samples: Optional[int] = SILHOUETTE_MAX_SAMPLES,
                        seed: int = 0) -> Optional[dict]:
    """Mean silhouette per class, in feature space and in the embedding.

    ``sklearn.metrics.silhouette_samples`` scores each sample from -1
    (closer to another class) to 1 (well inside its own); the mean over a
    class says how compact and apart that class is. Above ``max_samples``
    rows a class-stratified subsample (at least two rows per class) is
    scored, the same rows in both spaces.

    Args:
        features (array-like): Features, shape (N, C).
        embedding (array-like): Their embedding, shape (N, d).
        labels (array-like): Class id of each sample, shape (N,).
        metric (str): Distance in feature space (the embedding always uses
            euclidean, as t-SNE does). Defaults to 'euclidean'.
        max_samples (int | None): Most rows to score; None scores all.
            Defaults to 5000.
        seed (int): Seed of the subsample. Defaults to 0.

    Returns:
        dict | None: None when silhouette is undefined (fewer than two
        classes, or no class with two members); else ``classes`` (ids),
        ``counts`` (rows scored per class), ``features`` and ``embedding``
        (mean per class, lists aligned with ``classes``), ``overall_features``
        and ``overall_embedding`` (mean over all rows scored) and
        ``n_samples``.

    Examples:
        >>> from sklearn.datasets import load_digits
        >>> X, y = load_digits(return_X_y=True)
        >>> s = silhouette_by_class(X, X[:, :2], y)
        >>> len(s['classes']), s['overall_features'] > s['overall_embedding']
        (10, True)
    """
    from sklearn.metrics import silhouette_samples

    features = np.asarray(features)
    embedding = np.asarray(embedding)
    labels = np.asarray(labels)
    rows = _stratified_rows(labels, max_samples, seed)
    labels = labels[rows]
    classes, counts = np.unique(labels, return_counts=True)
    # silhouette_samples needs 2 <= n_labels <= n_samples - 1.
    if len(classes) < 2 or len(classes) >= len(labels):
        return None
    per_point = {
        'features': silhouette_samples(features[rows], labels, metric=metric),
        'embedding': silhouette_samples(embedding[rows], labels),
    }
    out = dict(classes=[int(c) for c in classes],
               counts=[int(c) for c in counts], n_samples=int(len(rows)))
    for space, values in per_point.items():
        out[space] = [float(values[labels == c].mean()) for c in classes]
        out[f'overall_{space}'] = float(values.mean())
    return out


def confusion_data(run: Run) -> Optional[Tuple[np.ndarray, List[int],
                                               List[str]]]:
    """The confusion matrix counts that the report draws.

    Args:
        run (Run): A run read back.

    Returns:
        tuple | None: None without predictions of the dataset's classes;
        else ``(matrix, ids, names)``: ``matrix[i, j]`` counts samples of
        class ``ids[i]`` predicted as ``ids[j]`` (ids of the model's
        classes, every one that occurs as truth or prediction), ``names``
        their names.
    """
    from sklearn.metrics import confusion_matrix

    space = run.label_space
    if not run.has_predictions or not space.matched:
        return None
    gt = space.to_model(run.labels)
    pred = run.table['pred_label'].astype(np.int64)
    ids = [int(i) for i in np.union1d(gt, pred)]
    return (confusion_matrix(gt, pred, labels=ids), ids,
            [space.model_name(i) for i in ids])


def plot_confusion_matrix(matrix: np.ndarray, names: Sequence[str],
                          out_path: str, title: str = '') -> str:
    """Draw ``matrix`` with ``ConfusionMatrixDisplay`` and save it as PNG.

    Args:
        matrix (np.ndarray): Counts, shape (K, K), rows true, columns
            predicted.
        names (Sequence[str]): Class names of the K rows.
        out_path (str): Where to write the PNG (atomically).
        title (str): Axes title. Defaults to ''.

    Returns:
        str: ``out_path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    k = len(names)
    # Grows with the class count so labels stay legible, within reason.
    side = float(np.clip(0.45 * k + 2.5, 5.0, 24.0))
    fig = Figure(figsize=(side, side))
    FigureCanvasAgg(fig)  # Agg directly: no pyplot figure, no window
    ax = fig.add_subplot()
    ConfusionMatrixDisplay(confusion_matrix=matrix,
                           display_labels=list(names)).plot(
        ax=ax, include_values=k <= CONFUSION_MAX_ANNOTATED,
        xticks_rotation='vertical' if k > 10 else 'horizontal',
        cmap='Blues', colorbar=True)
    if title:
        ax.set_title(title)
    _atomic(out_path, lambda f: fig.savefig(f, format='png', dpi=100,
                                            bbox_inches='tight'))
    return out_path


def class_errors(run: Run) -> Optional[List[dict]]:
    """Per-class accuracy, mean loss and commonest mistake, worst first.

    Args:
        run (Run): A run read back.

    Returns:
        list[dict] | None: None without predictions of the dataset's
        classes; else one dict per true class (``label``, ``name``, ``n``,
        ``accuracy``, ``mean_loss``, ``confused_with`` (name or None) and
        ``confused_count``), sorted by accuracy ascending, then mean loss
        descending.
    """
    space = run.label_space
    if not run.has_predictions or not space.matched:
        return None
    gt = run.labels
    pred = run.table['pred_label'].astype(np.int64)
    loss = run.table.get('loss', np.full(len(gt), np.nan)).astype(float)
    out = []
    for c in np.unique(gt):
        members = gt == c
        model_id = int(space.to_model([c])[0])
        wrong = pred[members & (pred != model_id)]
        top, count = None, 0
        if len(wrong):
            ids, counts = np.unique(wrong, return_counts=True)
            top = space.model_name(ids[counts.argmax()])
            count = int(counts.max())
        losses = loss[members]
        out.append(dict(
            label=int(c), name=space.dataset_name(c), n=int(members.sum()),
            accuracy=float(np.mean(pred[members] == model_id)),
            mean_loss=float(np.nanmean(losses))
            if np.isfinite(losses).any() else None,
            confused_with=top, confused_count=count))
    out.sort(key=lambda r: (r['accuracy'], -(r['mean_loss'] or 0.0)))
    return out


def class_predictions(run: Run) -> Optional[List[dict]]:
    """What the model predicts for each true class, in its own classes.

    Args:
        run (Run): A run read back.

    Returns:
        list[dict] | None: None without predictions; else one dict per
        true class, in id order: ``label``, ``name``, ``n``,
        ``predicted`` (name of the commonest prediction), ``share`` (its
        share of the class) and ``distinct`` (number of different
        predictions).
    """
    if not run.has_predictions:
        return None
    space = run.label_space
    gt = run.labels
    pred = run.table['pred_label'].astype(np.int64)
    out = []
    for c in np.unique(gt):
        ids, counts = np.unique(pred[gt == c], return_counts=True)
        out.append(dict(label=int(c), name=space.dataset_name(c),
                        n=int(counts.sum()),
                        predicted=space.model_name(ids[counts.argmax()]),
                        share=float(counts.max() / counts.sum()),
                        distinct=int(len(ids))))
    return out


def run_metrics(run: Run, key: str) -> Tuple[dict, str]:
    """Separation metrics of ``key``: from ``run.json``, else computed.

    Args:
        run (Run): A run read back.
        key (str): Feature key.

    Returns:
        tuple: ``(metrics, source)``, source ``'run.json'`` or
        ``'computed'``.
    """
    from tsneviz.metrics import separation_metrics

    stored = (run.manifest.get('results') or {}).get(key) or {}
    needed = ('knn_accuracy_features', 'knn_accuracy_embedding',
              'trustworthiness')
    if all(stored.get(name) is not None for name in needed):
        return dict(stored), 'run.json'
    computed = separation_metrics(run.features(key), run.coords(key),
                                  run.labels, k=10,
                                  seed=int(run.manifest.get('seed', 0)))
    return {**stored, **computed}, 'computed'


# ---------------------------------------------------------------- sections
def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return '–'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def _checkpoint_text(manifest: dict) -> str:
    ckpt = manifest.get('checkpoint') or {}
    if not ckpt.get('path'):
        return 'none (seeded random initialisation)'
    sha = ckpt.get('sha256')
    text = f'{ckpt["path"]}' + (f' (sha256 {sha[:12]})' if sha else '')
    # weights that did not load keep their random initial values: say so
    # where the results are read, not only in the log
    for key, what in (('mismatched_keys', 'have another shape'),
                      ('missing_keys', 'are missing from the checkpoint')):
        keys = ckpt.get(key) or []
        if keys:
            more = ' ...' if len(keys) > 5 else ''
            text += (f'; WARNING: {len(keys)} weight(s) {what} and keep '
                     f'random values ({", ".join(keys[:5])}{more})')
    return text


def _overview(run: Run, key: str) -> Section:
    m = run.manifest
    tsne = m.get('tsne') or {}
    params = tsne.get('params') or {}
    ext = m.get('extraction') or {}
    rows = [
        ['run directory', osp.abspath(run.path)],
        ['config', str(m.get('config', '–'))],
        ['checkpoint', _checkpoint_text(m)],
        ['samples', str(len(run.labels))],
        ['classes', str(len(np.unique(run.labels)))],
        ['label spaces', _label_space_text(run)],
        ['feature key', f'{key} (stage {ext.get("stage", "–")})'],
        ['reduction', f'{tsne.get("backend", "–")} t-SNE, perplexity '
                      f'{params.get("perplexity", "–")}, '
                      f'{params.get("n_components", 2)}-D'],
        ['created', str(m.get('created', '–'))],
    ]
    return Section('Run', [Table(['', ''], rows)])


def _metrics_section(run: Run, key: str, metrics: dict,
                     source: str) -> Section:
    k = metrics.get('knn_k', 10)
    tk = metrics.get('trustworthiness_k', k)
    rows = [
        [f'{k}-NN accuracy, feature space',
         _fmt(metrics.get('knn_accuracy_features'))],
        [f'{k}-NN accuracy, embedding',
         _fmt(metrics.get('knn_accuracy_embedding'))],
        [f'trustworthiness ({tk} neighbours)',
         _fmt(metrics.get('trustworthiness'))],
        ['t-SNE KL divergence', _fmt(metrics.get('kl_divergence'))],
    ]
    correct = run.label_space.correct(run.labels, run.table['pred_label']) \
        if run.has_predictions else None
    if correct is not None:
        rows.append(['classification accuracy',
                     _fmt(float(np.mean(correct)))])
        rows.append(['mean loss', _fmt(float(np.nanmean(run.table['loss'])))
                     if 'loss' in run.table else '–'])
    else:
        rows.append(['classification accuracy',
                     'no classification head' if not run.has_predictions
                     else 'not comparable: the model\'s classes are not '
                     'the dataset\'s'])
    note = ('Values from run.json.' if source == 'run.json' else
            'run.json has no metrics for this key; computed for this '
            'report.')
    return Section('Separation metrics', [
        Table(['metric', 'value'], rows),
        Paragraph(note + ' k-NN accuracy: leave-one-out vote of the k '
                  'nearest samples (chance is about 1 / number of classes). '
                  'Trustworthiness: 1.0 means no false neighbours in the '
                  'embedding.')])


def _label_space_text(run: Run) -> str:
    space = run.label_space
    if not run.has_predictions or space.model_size is None:
        return f'dataset {space.dataset_size} classes; no predictions'
    text = (f'dataset {space.dataset_size} classes, model '
            f'{space.model_size}: ')
    return text + (f'matched, {space.how}' if space.matched
                   else f'not matched: {space.reason}')


def _no_comparison(run: Run) -> str:
    """Why predictions are not compared with the truth."""
    if not run.has_predictions:
        return NO_HEAD
    return OTHER_SPACE.format(run.label_space.reason)


def _predictions_section(run: Run) -> Optional[Section]:
    rows = class_predictions(run)
    if rows is None or run.label_space.matched:
        return None
    return Section('Predictions by class', [
        Table(['class', 'samples', 'most often predicted as', 'share',
               'different predictions'],
              [[r['name'], str(r['n']), r['predicted'], _fmt(r['share'], 3),
                str(r['distinct'])] for r in rows]),
        Paragraph('Predictions are classes of the model '
                  f'({run.label_space.model_size}), not of the dataset.')])


def _silhouette_section(sil: Optional[dict], name_of) -> Section:
    if sil is None:
        return Section('Silhouette by class', [Paragraph(
            'silhouette is undefined here: it needs at least two classes '
            'and fewer classes than samples')])
    rows = [[name_of(c), str(n), _fmt(f, 3), _fmt(e, 3)] for c, n, f, e in
            zip(sil['classes'], sil['counts'], sil['features'],
                sil['embedding'])]
    rows.append(['all', str(sil['n_samples']),
                 _fmt(sil['overall_features'], 3),
                 _fmt(sil['overall_embedding'], 3)])
    return Section('Silhouette by class', [
        Table(['class', 'samples', 'features', 'embedding'], rows),
        Paragraph('Mean silhouette of the samples of each class '
                  '(scikit-learn silhouette_samples), from -1 (closer to '
                  'other classes) to 1 (compact and apart).')])


def _confusion_section(run: Run, confusion) -> Section:
    if confusion is None:
        return Section('Confusion matrix', [Paragraph(_no_comparison(run))])
    return Section('Confusion matrix', [
        Image(CONFUSION_PNG, 'confusion matrix'),
        Paragraph('Rows: true class; columns: predicted class.')])


def _worst_section(run: Run, errors: Optional[List[dict]]) -> Section:
    if errors is None:
        return Section('Worst classes', [Paragraph(_no_comparison(run))])
    rows = [[e['name'], str(e['n']), _fmt(e['accuracy'], 3),
             _fmt(e['mean_loss'], 3),
             f'{e["confused_with"]} ({e["confused_count"]})'
             if e['confused_with'] is not None else '–']
            for e in errors[:TOP_ROWS]]
    return Section('Worst classes', [
        Table(['class', 'samples', 'accuracy', 'mean loss',
               'most often predicted as'], rows),
        Paragraph('Lowest accuracy first, ties broken by highest mean '
                  'loss.')])


def _clusters_section(run_dir: str) -> Section:
    path = osp.join(run_dir, CLUSTERS_CSV)
    if not osp.isfile(path):
        return Section('High-loss clusters', [Paragraph(
            f'{CLUSTERS_CSV} not found in this run: cluster it first '
            f'({step_command("clusters", run_dir)}), then write the report '
            'again.')])
    table = read_table(path)
    columns = [c for c in CLUSTER_COLUMNS if c in table]
    n = len(next(iter(table.values()), []))
    order = list(range(n))
    if 'rank' in table:
        order.sort(key=lambda i: _number(table['rank'][i], np.inf))
    rows = [[_cell(table[c][i]) for c in columns] for i in order[:TOP_ROWS]]
    note = (f'Top {len(rows)} of {n} clusters of {CLUSTERS_CSV}, rank 1 = '
            'highest mean loss.')
    if 'error_rate' in table and not any(table['error_rate']):
        note += (' Error rate and loss are empty: the run has no '
                 'predictions of the dataset\'s classes.')
    return Section('High-loss clusters', [Table(columns, rows),
                                          Paragraph(note)])


def _number(text: str, default=np.nan) -> float:
    try:
        return float(text)
    except ValueError:
        return default


def _cell(text: str) -> str:
    if text == '':
        return '–'
    value = _number(text)
    # Integers (rank, size, ids) stay as written; fractions get 3 decimals.
    if np.isfinite(value) and any(ch in text for ch in '.eE'):
        return f'{value:.3f}'
    return text


def _plots(run_dir: str, key: str) -> List[str]:
    """PNG plots of the run: the key's own first, then every other view."""
    found = sorted(osp.basename(p)
                   for p in glob.glob(osp.join(run_dir, 'feat_*.png')))
    own = f'{key}.png'
    return ([own] if own in found else []) + [p for p in found if p != own]


def _plots_section(plots: List[str]) -> Section:
    if not plots:
        return Section('Plots', [Paragraph('no feat_*.png plot in this '
                                           'run directory')])
    blocks = []
    for name in plots:
        blocks += [Paragraph(name), Image(name, name)]
    return Section('Plots', blocks)


# ---------------------------------------------------------------- rendering
def _md_cell(text: str) -> str:
    return str(text).replace('|', '\\|').replace('\n', ' ')


def render_markdown(title: str, sections: Sequence[Section]) -> str:
    """Markdown of ``sections``; images by their relative file name."""
    lines = [f'# {title}', '']
    for section in sections:
        lines += [f'## {section.title}', '']
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines += [block.text, '']
            elif isinstance(block, Image):
                lines += [f'![{block.alt}]({block.file})', '']
            elif isinstance(block, Table):
                lines.append('| ' + ' | '.join(_md_cell(h) or ' '
                                                for h in block.headers) + ' |')
                lines.append('|' + '---|' * len(block.headers))
                lines += ['| ' + ' | '.join(_md_cell(c) for c in row) + ' |'
                          for row in block.rows]
                lines.append('')
    return '\n'.join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1000px;
       margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd;
       padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #f3f3f3; }
td:not(:first-child) { font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; }
p.caption { font-family: monospace; margin-bottom: 0; }
"""


def render_html(title: str, sections: Sequence[Section],
                run_dir: str) -> str:
    """Self-contained HTML of ``sections``: images inlined, no URLs."""
    esc = html.escape
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
           f'<title>{esc(title)}</title>', f'<style>{_CSS}</style>',
           '</head><body>', f'<h1>{esc(title)}</h1>']
    for section in sections:
        out.append(f'<h2>{esc(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, Paragraph):
                out.append(f'<p>{esc(block.text)}</p>')
            elif isinstance(block, Image):
                with open(osp.join(run_dir, block.file), 'rb') as f:
                    data = base64.b64encode(f.read()).decode('ascii')
                out.append(f'<img alt="{esc(block.alt)}" '
                           f'src="data:image/png;base64,{data}">')
            elif isinstance(block, Table):
                out.append('<table>')
                if any(block.headers):
                    out.append('<tr>' + ''.join(f'<th>{esc(str(h))}</th>'
                                                for h in block.headers)
                               + '</tr>')
                out += ['<tr>' + ''.join(f'<td>{esc(str(c))}</td>'
                                         for c in row) + '</tr>'
                        for row in block.rows]
                out.append('</table>')
    out.append('</body></html>')
    return '\n'.join(out)


# ---------------------------------------------------------------- entry
def write_report(run_dir: str, key: Optional[str] = None) -> Tuple[str, str]:
    """Write ``report.md`` and ``report.html`` into a run directory.

    Sections: the run (config, checkpoint, samples), separation metrics
    (k-NN accuracy in feature space and in the embedding, trustworthiness;
    from ``run.json``, computed when absent), silhouette by class (features
    and embedding), the confusion matrix (``confusion_matrix.png``), the
    worst classes, the high-loss clusters (top rows of ``clusters.csv`` when
    another step has written it) and every ``feat_*.png`` plot. Without
    predictions the confusion and worst-class sections say "no
    classification head"; with predictions of the model's own classes
    (label spaces not matched, see :mod:`tsneviz.labels`) they say so, and
    a "Predictions by class" section shows what the model calls each
    class. ``run.json`` is updated last, with a ``report`` section and the
    new outputs.

    Args:
        run_dir (str): A complete run directory.
        key (str, optional): Feature key to report, e.g. ``'feat_3'``.
            Defaults to the run's first key.

    Returns:
        tuple[str, str]: Paths of ``report.md`` and ``report.html``.

    Raises:
        UserError: If ``run_dir`` is not a complete run or has no ``key``.

    Examples:
        >>> md, page = write_report('work_dirs/digits/tsne_20261123_144017')
        >>> osp.basename(md), osp.basename(page)
        ('report.md', 'report.html')
    """
    run = Run(run_dir)
    key = run.key(key)
    metrics, source = run_metrics(run, key)
    params = (run.manifest.get('tsne') or {}).get('params') or {}
    sil = silhouette_by_class(run.features(key), run.coords(key), run.labels,
                              metric=params.get('metric', 'euclidean'),
                              seed=int(run.manifest.get('seed', 0)))
    outputs = []
    confusion = confusion_data(run)
    if confusion is not None:
        matrix, _, cm_names = confusion
        plot_confusion_matrix(matrix, cm_names,
                              osp.join(run_dir, CONFUSION_PNG),
                              title=f'{osp.basename(osp.abspath(run_dir))}'
                                    f' · {len(run.labels)} samples')
        outputs.append(CONFUSION_PNG)
    errors = class_errors(run)
    plots = _plots(run_dir, key)

    title = f'tsneviz report: {osp.basename(osp.abspath(run_dir))} · {key}'
    sections = [
        _overview(run, key),
        _metrics_section(run, key, metrics, source),
        _silhouette_section(sil, run.label_space.dataset_name),
        _confusion_section(run, confusion),
        _worst_section(run, errors),
        _predictions_section(run),
        _clusters_section(run_dir),
        _plots_section(plots),
    ]
    sections = [s for s in sections if s is not None]
    md_path = osp.join(run_dir, REPORT_MD)
    html_path = osp.join(run_dir, REPORT_HTML)
    md_text = render_markdown(title, sections).encode('utf-8')
    html_text = render_html(title, sections, run_dir).encode('utf-8')
    _atomic(md_path, lambda f: f.write(md_text))
    _atomic(html_path, lambda f: f.write(html_text))
    outputs += [REPORT_MD, REPORT_HTML]

    summary: Dict[str, object] = dict(
        key=key, metrics_source=source,
        has_predictions=run.has_predictions,
        clusters=osp.isfile(osp.join(run_dir, CLUSTERS_CSV)), plots=plots)
    if source == 'computed':
        summary['metrics'] = {k: v for k, v in metrics.items()
                              if k != 'kl_divergence'}
    if sil is not None:
        summary['silhouette'] = dict(
            features=sil['overall_features'],
            embedding=sil['overall_embedding'], n_samples=sil['n_samples'])
    if errors is not None:
        summary['accuracy'] = float(np.mean(run.label_space.correct(
            run.labels, run.table['pred_label'])))
    update_manifest(run_dir, {'report': summary}, outputs)
    return md_path, html_path
