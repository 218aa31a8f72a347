"""The sections of a report, built from a run and what was measured.

Overview, separation metrics, silhouette by class, confusion matrix,
worst classes, predictions by class, suspected label errors, high-loss
clusters and plots; each a :class:`~tsneviz.report.render.Section` of
paragraphs, tables and images. :func:`build_sections` puts them in the
report's order.
"""
import os.path as osp
from typing import List, Optional

import numpy as np

from tsneviz.rundir import (
    CLUSTER_COLUMNS,
    CLUSTERS,
    CONFUSION_PNG,
    MANIFEST,
    Run,
    flat_view_note,
    plot_file,
    step_command,
)

from .measures import class_predictions
from .placed import placed_section
from .render import Image, Paragraph, Section, Table

#: Rows of the worst-classes and high-loss-clusters tables.
TOP_ROWS = 10

NO_HEAD = ('no classification head: this run has no predictions, so there '
           'is nothing to report here')
OTHER_SPACE = ('the model predicts its own classes, not the dataset\'s ({}), '
               'so predictions are not compared with the truth; see '
               '"Predictions by class"')


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


# The settings that say most about a layout, in this order, where the
# method has them.
_LAYOUT_SETTINGS = ('perplexity', 'n_neighbors', 'min_dist', 'metric')


def _setting(value) -> str:
    """A layout setting as shown: a float with ``:g``.

    The perplexity used for a few samples is (N - 1) / 3, which run.json
    holds as e.g. 29.666666666666668.
    """
    return f'{value:g}' if isinstance(value, float) else str(value)


def _layout_text(run: Run) -> str:
    layout = run.manifest.get('layout') or {}
    params = run.layout_params
    name = layout.get('reducer') or run.method
    if run.method == 'tsne' and (run.manifest.get('tsne') or {}).get(
            'backend'):
        name = f"{run.manifest['tsne']['backend']} t-SNE"
    shown = [f'{p.replace("_", " ")} {_setting(params[p])}'
             for p in _LAYOUT_SETTINGS if params.get(p) is not None]
    shown.append(f'{params.get("n_components", 2)}-D')
    return f'{name}, ' + ', '.join(shown)


def _overview(run: Run, key: str) -> Section:
    m = run.manifest
    ext = m.get('extraction') or {}
    rows = [
        ['run directory', osp.abspath(run.path)],
        ['config', str(m.get('config', '–'))],
        ['checkpoint', _checkpoint_text(m)],
        ['samples', str(len(run.labels))],
        ['classes', str(len(np.unique(run.labels)))],
        ['label spaces', _label_space_text(run)],
        ['feature key', f'{key} (stage {ext.get("stage", "–")})'],
        ['layout', _layout_text(run)],
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
    note = ('Values from run.json.' if source == MANIFEST else
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


def _label_issues_section(run: Run) -> Optional[Section]:
    """The suspected label errors, lowest label quality first."""
    from tsneviz.analysis.label_issues import ISSUE, suspects
    from tsneviz.data.paths import run_data_prefix
    from tsneviz.exporters.splits import annotation_path

    if ISSUE not in run.table:
        return None  # a run analysed before the step existed
    found = run.manifest.get('label_issues') or {}
    rows = suspects(run)
    prefix = run_data_prefix(run) if run.manifest.get('data_prefix') \
        else None
    table = [[str(i + 1), str(r['index']),
              annotation_path(r['img_path'], prefix),
              _fmt(r['label_quality'], 3), r['gt_class'],
              r['pred_class'] or '–', r['vote_class'] or '–']
             for i, r in enumerate(rows[:TOP_ROWS])]
    method = found.get('method', '–')
    how = (f'the vote of the {found.get("k")} nearest neighbours in feature '
           'space' if method == 'knn_vote' else 'confident learning '
           '(cleanlab) on the classification head\'s predictions')
    note = (f'Top {len(table)} of {len(rows)} suspects of {len(run)} '
            f'samples, by {how}. Label quality is in [0, 1], lower = more '
            'likely mislabelled. Predictions on the data the model was '
            'trained on hide label errors: held-out data, or the feature-'
            'space vote, is the honest signal. All suspects: '
            f'{step_command("label_issues", run.path)}.')
    return Section('Suspected label errors', [
        Table(['#', 'index', 'image', 'quality', 'given label',
               'prediction', 'neighbours say'], table),
        Paragraph(note)])


def _reliability_section(run: Run, key: str) -> Optional[Section]:
    """The least reliable regions of the map, and the global figures."""
    from tsneviz.analysis.reliability import COLUMN, LOW

    found = run.manifest.get('reliability') or {}
    if COLUMN not in run.table or found.get('key') != key:
        return None  # not measured (or for another key)
    results = (run.manifest.get('results') or {}).get(key) or {}
    tk = results.get('trustworthiness_k', '–')
    figures = [
        [f'mean map reliability ({found["k"]} neighbours)',
         _fmt(found.get('mean'), 3)],
        ['the same for a random map (chance)', _fmt(found.get('chance'), 3)],
        [f'samples keeping under {LOW:.0%} of their neighbours',
         _fmt(found.get('low_share'), 3)],
        [f'trustworthiness ({tk} neighbours)',
         _fmt(results.get('trustworthiness'))],
        [f'continuity ({found.get("continuity_k", tk)} neighbours)',
         _fmt(found.get('continuity'))],
        [f'Spearman correlation of distances '
         f'({found.get("distance_spearman_pairs")} pairs of samples)',
         _fmt(found.get('distance_spearman'))],
    ]
    regions = [[str(r['rank']), r['region'], str(r['size']),
                _fmt(r['mean_reliability'], 3), _fmt(r['low_share'], 3),
                r['dominant_class']] for r in found.get('regions', [])]
    what = 'clusters' if found.get('by') == 'cluster' else \
        'cells of a grid on the map'
    blocks = [
        Table(['figure', 'value'], figures),
        Paragraph(
            'A sample\'s map reliability is the share of its nearest '
            'neighbours in feature space (the run\'s neighbour graph, '
            f'{found["graph"]["space"]}, {found["graph"]["metric"]}) that '
            'are also its nearest on the map. Trustworthiness near 1: '
            'samples close on the map are close in feature space; '
            'continuity near 1: samples close in feature space stay close '
            'on the map. t-SNE preserves local, not global, structure: '
            'these local figures are high, while the correlation of '
            'distances says how far the sizes of and gaps between groups '
            'can be read; a low value means they cannot.'),
        Table(['#', 'region', 'samples', 'mean reliability',
               f'share < {LOW:.1f}', 'mostly'], regions),
        Paragraph(f'The least reliable {len(regions)} of '
                  f'{found.get("n_regions")} {what} (at least 10 samples '
                  'each), lowest mean first: read neighbourhoods there '
                  'with care. Numbered on the map below. Measured by: '
                  f'{step_command("reliability", run.path)}.')]
    if not regions:  # too few samples for a region
        blocks[2:4] = [Paragraph('No region of the map has 10 samples or '
                                 'more to rank.')]
    if found.get('figure') and run.has(found['figure']):
        note = flat_view_note(run.coords(key).shape[1])
        if note:  # the figure is flat: say what of the map it draws
            blocks.append(Paragraph(f'The figure below draws {note}.'))
        blocks.append(Image(found['figure'], 'the map coloured by '
                            'reliability' + (f', {note}' if note else '')))
    return Section('Where the map can be trusted', blocks)


def _clusters_section(run: Run) -> Section:
    table = run.clusters()
    if table is None:
        return Section('High-loss clusters', [Paragraph(
            f'{CLUSTERS} not found in this run: cluster it first '
            f'({step_command("clusters", run.path)}), then write the report '
            'again.')])
    columns = [c for c in CLUSTER_COLUMNS if c in table]
    n = len(next(iter(table.values()), []))
    order = list(range(n))
    if 'rank' in table:
        order.sort(key=lambda i: _number(table['rank'][i], np.inf))
    rows = [[_cell(table[c][i]) for c in columns] for i in order[:TOP_ROWS]]
    note = (f'Top {len(rows)} of {n} clusters of {CLUSTERS}, rank 1 = '
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


def _plots(run: Run, key: str) -> List[str]:
    """PNG plots of the run: the key's own first, then every other view."""
    found = run.plot_files()
    own = plot_file(key)
    return ([own] if own in found else []) + [p for p in found if p != own]


def _plots_section(plots: List[str]) -> Section:
    if not plots:
        return Section('Plots', [Paragraph('no feat_*.png plot in this '
                                           'run directory')])
    blocks = []
    for name in plots:
        blocks += [Paragraph(name), Image(name, name)]
    return Section('Plots', blocks)


def build_sections(run: Run, key: str, metrics: dict, source: str,
                   sil: Optional[dict], confusion,
                   errors: Optional[List[dict]],
                   plots: List[str]) -> List[Section]:
    """The report's sections in order; those that do not apply left out.

    Args:
        run (Run): A run read back.
        key (str): The feature key reported.
        metrics (dict): Separation metrics of ``key``.
        source (str): Where ``metrics`` come from (``run.json`` or
            ``'computed'``).
        sil (dict | None): Silhouette by class, None where undefined.
        confusion (tuple | None): As returned by ``confusion_data``.
        errors (list[dict] | None): As returned by ``class_errors``.
        plots (list[str]): The run's PNG plots, by name.

    Returns:
        list[Section]: What the report shows.
    """
    sections = [
        _overview(run, key),
        _metrics_section(run, key, metrics, source),
        _silhouette_section(sil, run.label_space.dataset_name),
        _confusion_section(run, confusion),
        _worst_section(run, errors),
        _predictions_section(run),
        _label_issues_section(run),
        placed_section(run),
        _reliability_section(run, key),
        _clusters_section(run),
        _plots_section(plots),
    ]
    return [s for s in sections if s is not None]
