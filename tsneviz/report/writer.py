"""Writing a report: ``report.md``, ``report.html`` and the confusion PNG.

:func:`write_report` measures a run, builds its sections, renders them to
Markdown and HTML, and records the report in ``run.json``.
"""
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from tsneviz.fonts import cover_glyphs
from tsneviz.metrics import silhouette_by_class
from tsneviz.rundir import (
    CLUSTERS,
    CONFUSION_PNG,
    REPORT_HTML,
    REPORT_MD,
    Run,
    atomic_write,
    update_manifest,
    write_bytes,
)

from .measures import class_errors, confusion_data, run_metrics
from .render import render_html, render_markdown
from .sections import _plots, build_sections

#: Above this many classes the confusion matrix cells carry no numbers:
#: they would overlap.
CONFUSION_MAX_ANNOTATED = 30


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

    cover_glyphs(names)
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
    atomic_write(out_path, lambda f: fig.savefig(f, format='png', dpi=100,
                                                 bbox_inches='tight'))
    return out_path


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
    # the layout's own distance, whichever method made it (a cosine UMAP
    # is judged by cosine silhouettes)
    sil = silhouette_by_class(run.features(key), run.coords(key), run.labels,
                              metric=run.metric,
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
    plots = _plots(run, key)

    title = f'tsneviz report: {osp.basename(osp.abspath(run_dir))} · {key}'
    sections = build_sections(run, key, metrics, source, sil, confusion,
                              errors, plots)
    md_path = osp.join(run_dir, REPORT_MD)
    html_path = osp.join(run_dir, REPORT_HTML)
    md_text = render_markdown(title, sections).encode('utf-8')
    html_text = render_html(title, sections, run).encode('utf-8')
    write_bytes(md_path, md_text)
    write_bytes(html_path, html_text)
    outputs += [REPORT_MD, REPORT_HTML]

    summary: Dict[str, object] = dict(
        key=key, metrics_source=source,
        has_predictions=run.has_predictions,
        clusters=run.has(CLUSTERS), plots=plots)
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
