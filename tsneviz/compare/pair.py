"""Compare two runs on the same samples, e.g. pretrained vs fine-tuned.

:func:`compare_runs` checks that both runs hold the same images (reordering
the second to the first when only the order differs), brings the second
embedding into the frame of the first, and writes a side-by-side plot
(``compare.png``, same class colours) and a metrics table (``compare.md``
and ``compare.json``) with the better run marked per row.

t-SNE maps are only defined up to rotation, reflection, translation and
scale, so two maps of similar features can still look unrelated. Two ways
to line them up:

- ``'procrustes'``: rotate/reflect B's map onto A's
  (``scipy.linalg.orthogonal_procrustes``), scaled to A's spread and
  centred on A's centre; B's layout itself is unchanged,
  so every embedding metric of B stays what it was.
- ``'init'``: run t-SNE again on B's features, starting from A's map, so
  both optimisations start from the same layout and what moves is what the
  features changed (see :func:`tsne_from_init` for how the start map
  reaches openTSNE).
"""
import os
import os.path as osp
from typing import Dict, Optional

import numpy as np

from tsneviz.compare.align import (
    disparity,
    match_samples,
    procrustes_align,
    tsne_from_init,
)
from tsneviz.errors import UserError
from tsneviz.rundir import (
    Run,
    atomic_write,
    write_array,
    write_bytes,
    write_json,
)

ALIGN_MODES = ('procrustes', 'init', 'none')
COMPARE_PNG = 'compare.png'
COMPARE_MD = 'compare.md'
COMPARE_JSON = 'compare.json'
ALIGNED_NPY = 'coords_b_aligned.npy'

# (name, label, direction): every row of the table, and which way is better.
METRICS = (
    ('knn_accuracy_features', '{k}-NN accuracy, feature space', 'higher'),
    ('knn_accuracy_embedding', '{k}-NN accuracy, embedding', 'higher'),
    ('trustworthiness', 'trustworthiness', 'higher'),
    ('silhouette_features', 'silhouette, feature space', 'higher'),
    ('accuracy', 'classification accuracy', 'higher'),
    ('mean_loss', 'mean loss', 'lower'),
)


# ---------------------------------------------------------------- metrics
def run_metrics(features, coords, labels, run: Run, order, metric,
             seed) -> Dict[str, Optional[float]]:
    """A run's metrics on ``features`` and the map ``coords``.

    Args:
        features (np.ndarray): Features (N, C) in the reference order.
        coords (np.ndarray): Map (N, d) in the same order.
        labels (np.ndarray): Ground truth (N,) in the same order.
        run (Run): The run, for its predictions and label space.
        order (np.ndarray): Row of the run of each reference sample.
        metric (str): Distance of the silhouette.
        seed (int): Seed of the sampled metrics.

    Returns:
        dict: ``separation_metrics`` (k-NN accuracies, trustworthiness,
        ``knn_k``), ``silhouette_features`` and, with a head matched to
        the dataset, ``accuracy`` and ``mean_loss``.
    """
    from tsneviz.metrics import separation_metrics, silhouette_score

    out = dict(separation_metrics(features, coords, labels, k=10, seed=seed))
    out['silhouette_features'] = silhouette_score(features, labels, metric,
                                                  seed=seed)
    correct = run.label_space.correct(
        labels, run.table['pred_label'][order]) \
        if run.has_predictions else None
    if correct is not None:
        out['accuracy'] = float(np.mean(correct))
        loss = run.table['loss'][order] if 'loss' in run.table else None
        out['mean_loss'] = float(np.nanmean(loss)) \
            if loss is not None and np.isfinite(loss).any() else None
    return out


def _better(a, b, direction) -> Optional[str]:
    if a is None or b is None:
        return None
    if np.isclose(a, b, rtol=0, atol=1e-9):
        return 'tie'
    return 'A' if (a > b) == (direction == 'higher') else 'B'


def describe_run(run: Run, key: str) -> dict:
    """Path, key, checkpoint and a display label of a run."""
    ckpt = (run.manifest.get('checkpoint') or {})
    path = ckpt.get('path')
    return dict(path=osp.abspath(run.path), key=key, checkpoint=path,
                checkpoint_sha256=ckpt.get('sha256'),
                name=osp.basename(osp.abspath(run.path)),
                label=osp.basename(path) if path else
                'random init (no checkpoint)',
                has_predictions=run.has_predictions)


# ---------------------------------------------------------------- outputs
def _plot(coords_a, coords_b, labels, name_of, info_a, info_b, align,
          out_path) -> str:
    """Both maps side by side in one frame, coloured as ``plot_embedding``.

    ``tsneviz.visualization.plot_embedding`` min-max scales each axis of
    each map on its own, which would undo the alignment; here both axes
    share one range so that "B moved" is visible as movement.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from tsneviz.visualization import AUTO_LEGEND_MAX_CLASSES, class_palette

    classes = np.unique(labels)
    # Colour by rank among the classes present, as plot_embedding does, so
    # a class has the same colour here as in each run's own plot.
    colors = np.array(class_palette(len(classes)))
    point_colors = colors[np.searchsorted(classes, labels)]
    # A fixed shuffled drawing order: no class always on top.
    order = np.random.default_rng(0).permutation(len(labels))
    size = float(np.clip(400.0 / np.sqrt(max(len(labels), 1)), 1.0, 50.0))
    both = np.concatenate([coords_a, coords_b]) \
        if coords_a.shape[1] == coords_b.shape[1] else None
    dim = coords_a.shape[1]

    fig = Figure(figsize=(16, 8.5), layout='constrained')
    FigureCanvasAgg(fig)  # Agg directly: no pyplot figure, no window
    axes = []
    for i, (coords, info, side) in enumerate(
            ((coords_a, info_a, 'A'), (coords_b, info_b, 'B'))):
        d = coords.shape[1]
        ax = fig.add_subplot(1, 2, i + 1,
                             **({'projection': '3d'} if d == 3 else {}))
        ax.scatter(*coords[order].T, s=size, c=point_colors[order],
                   linewidths=0, rasterized=True,
                   **({'depthshade': False} if d == 3 else {}))
        if both is not None:
            lo, hi = both.min(axis=0), both.max(axis=0)
            pad = 0.02 * (hi - lo).max()
            ax.set_xlim(lo[0] - pad, hi[0] + pad)
            ax.set_ylim(lo[1] - pad, hi[1] + pad)
            if dim == 3:
                ax.set_zlim(lo[2] - pad, hi[2] + pad)
        if d == 2:
            ax.set_aspect('equal')
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f'{side}: {info["label"]}\n{info["name"]} · '
                     f'{info["key"]}')
        axes.append(ax)
    if len(classes) <= AUTO_LEGEND_MAX_CLASSES:
        handles = [Line2D([], [], linestyle='none', marker='o', markersize=6,
                          markeredgewidth=0, markerfacecolor=color,
                          label=name_of(int(c)))
                   for color, c in zip(colors, classes)]
        axes[1].legend(handles=handles, loc='upper left',
                       bbox_to_anchor=(1.02, 1.0), frameon=False,
                       fontsize='small')
    fig.suptitle(f'same {len(labels)} samples · B aligned to A: {align}')
    atomic_write(out_path, lambda f: fig.savefig(
        f, format='png', dpi=100, bbox_inches='tight'))
    return out_path


def _fmt(value) -> str:
    return '–' if value is None else f'{value:.4f}'


def render_markdown(result: dict) -> str:
    """``compare.md``: the two runs, the alignment and the metrics table."""
    a, b = result['run_a'], result['run_b']
    al = result['alignment']
    lines = ['# tsneviz comparison', '',
             f'- **A**: {a["label"]} — `{a["path"]}` ({a["key"]})',
             f'- **B**: {b["label"]} — `{b["path"]}` ({b["key"]})',
             f'- samples: {result["n_samples"]}'
             + (' (B reordered to A)' if result['reordered'] else ''),
             f'- alignment: {result["align"]}; disparity to A '
             f'{_fmt(al["disparity_before"])} before, '
             f'{_fmt(al["disparity_after"])} after (0: same layout)', '',
             '| metric | better is | A | B | better |',
             '|---|---|---|---|---|']
    for row in result['metrics']:
        cells = [_fmt(row['a']), _fmt(row['b'])]
        if row['better'] in ('A', 'B'):
            i = 'AB'.index(row['better'])
            cells[i] = f'**{cells[i]}**'
        lines.append(f'| {row["label"]} | {row["direction"]} | {cells[0]} | '
                     f'{cells[1]} | {row["better"] or "–"} |')
    lines += [''] + list(result['notes']) + \
        ['', f'![A vs B]({COMPARE_PNG})', '']
    return '\n'.join(lines)


def compare_runs(run_a: str, run_b: str, out_dir: Optional[str] = None,
                 key_a: Optional[str] = None, key_b: Optional[str] = None,
                 align: str = 'procrustes') -> dict:
    """Compare two runs on the same samples; write plot and metrics table.

    Metrics per run: k-NN accuracy in feature space and in the embedding,
    trustworthiness, silhouette of the features (all higher is better) and,
    when both runs have a classification head, accuracy (higher is better)
    and mean loss (lower is better). Each row names the better run.

    Args:
        run_a (str): Reference run directory (e.g. the pretrained model).
        run_b (str): Run to compare (e.g. the fine-tuned one).
        out_dir (str, optional): Where to write. Defaults to
            ``<work dir of A>/compare_<A>_vs_<B>/``.
        key_a (str, optional): Feature key of A. Defaults to its first.
        key_b (str, optional): Feature key of B. Defaults to its first.
        align (str): ``'procrustes'`` (rotate, scale and shift B's map onto
            A's), ``'init'`` (t-SNE again on B's features from A's map) or
            ``'none'``. Defaults to ``'procrustes'``.

    Returns:
        dict: What ``compare.json`` holds (``run_a``, ``run_b``, ``align``,
        ``alignment``, ``n_samples``, ``reordered``, ``metrics`` rows with
        ``name``, ``label``, ``direction``, ``a``, ``b``, ``better``;
        ``notes``) plus ``out_dir`` and ``files`` (paths by name).

    Raises:
        UserError: If a directory is not a complete run, the samples
            differ, a key is missing, the maps differ in dimension, or
            ``align`` is unknown.

    Examples:
        >>> result = compare_runs('work_dirs/d/tsne_pretrained',
        ...                       'work_dirs/d/tsne_finetuned')
        >>> [(r['name'], r['better']) for r in result['metrics']][:1]
        [('knn_accuracy_features', 'B')]
    """
    if align not in ALIGN_MODES:
        raise UserError(f'unknown --align {align!r}; choose one of '
                        f'{", ".join(ALIGN_MODES)}')
    a, b = Run(run_a), Run(run_b)
    key_a, key_b = a.key(key_a), b.key(key_b)
    order = match_samples(a, b)
    labels = a.labels
    if not np.array_equal(b.labels[order], labels):
        raise UserError(f'{run_a} and {run_b} hold the same images with '
                        'different labels; compare runs of the same dataset')
    feats_a, coords_a = a.features(key_a), a.coords(key_a)
    feats_b, coords_b = b.features(key_b)[order], b.coords(key_b)[order]
    if coords_a.shape[1] != coords_b.shape[1] and align != 'none':
        raise UserError(f'A\'s map is {coords_a.shape[1]}-D and B\'s '
                        f'{coords_b.shape[1]}-D; align needs the same '
                        'dimension (use --align none)')

    params_a = dict((a.manifest.get('tsne') or {}).get('params') or {})
    seed = int(a.manifest.get('seed', 0))
    before = disparity(coords_a, coords_b) \
        if coords_a.shape == coords_b.shape else None
    alignment = dict(disparity_before=before)
    if align == 'procrustes':
        coords_b, info = procrustes_align(coords_a, coords_b)
        alignment.update(info)
    elif align == 'init':
        coords_b, kl = tsne_from_init(feats_b, coords_a, params_a)
        alignment.update(kl_divergence=kl, tsne_params=params_a)
    alignment['disparity_after'] = disparity(coords_a, coords_b) \
        if coords_a.shape == coords_b.shape else None

    metric = params_a.get('metric', 'euclidean')
    m_a = run_metrics(feats_a, coords_a, labels, a,
                      np.arange(len(labels)), metric, seed)
    m_b = run_metrics(feats_b, coords_b, labels, b, order, metric, seed)
    notes = []
    both_heads = 'accuracy' in m_a and 'accuracy' in m_b
    for why, runs in (
            ('no classification head', [s for s, r in (('A', a), ('B', b))
                                        if not r.has_predictions]),
            ('predictions in the model\'s own classes, not the dataset\'s',
             [s for s, r in (('A', a), ('B', b)) if r.has_predictions and
              not r.label_space.matched])):
        if runs:
            notes.append(f'{" and ".join(runs)}: {why}, so accuracy and '
                         'loss are not compared.')
    rows = []
    for name, label, direction in METRICS:
        if name in ('accuracy', 'mean_loss') and not both_heads:
            continue
        va, vb = m_a.get(name), m_b.get(name)
        rows.append(dict(name=name, label=label.format(k=m_a['knn_k']),
                         direction=direction, a=va, b=vb,
                         better=_better(va, vb, direction)))
    if align == 'procrustes':
        notes.append('Procrustes moves B\'s map as a whole, so B\'s embedding '
                     'metrics are those of its own run.')
    elif align == 'init':
        notes.append('B\'s map was recomputed from A\'s map as the start; '
                     'B\'s embedding metrics are of this new map.')

    info_a, info_b = describe_run(a, key_a), describe_run(b, key_b)
    if out_dir is None:
        out_dir = osp.join(osp.dirname(osp.abspath(run_a)),
                           f'compare_{info_a["name"]}_vs_{info_b["name"]}')
    os.makedirs(out_dir, exist_ok=True)
    result = dict(run_a=info_a, run_b=info_b, align=align,
                  alignment=alignment, n_samples=int(len(labels)),
                  reordered=bool(np.any(order != np.arange(len(order)))),
                  metrics=rows, metrics_a=m_a, metrics_b=m_b, notes=notes)
    files = dict(png=osp.join(out_dir, COMPARE_PNG),
                 md=osp.join(out_dir, COMPARE_MD),
                 json=osp.join(out_dir, COMPARE_JSON),
                 aligned=osp.join(out_dir, ALIGNED_NPY))
    write_array(files['aligned'], np.asarray(coords_b, dtype=np.float32))
    _plot(coords_a, coords_b, labels, a.label_space.dataset_name, info_a,
          info_b, align, files['png'])
    text = render_markdown(result).encode('utf-8')
    write_bytes(files['md'], text)
    result['files'] = {k: osp.basename(v) for k, v in files.items()}
    write_json(files['json'], result)
    return dict(result, out_dir=out_dir, files=files)

