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

Modules: :mod:`.measures` (confusion counts, per-class errors, metrics),
:mod:`.render` (the document blocks and their Markdown and HTML),
:mod:`.sections` (what each section says) and :mod:`.writer`
(:func:`write_report` and the confusion matrix PNG).
"""
from tsneviz.metrics import silhouette_by_class

from .measures import (
    class_errors,
    class_predictions,
    confusion_data,
    run_metrics,
)
from .render import (
    Image,
    Paragraph,
    Section,
    Table,
    render_html,
    render_markdown,
)
from .sections import NO_HEAD, OTHER_SPACE, TOP_ROWS, build_sections
from .writer import (
    CONFUSION_MAX_ANNOTATED,
    plot_confusion_matrix,
    write_report,
)

__all__ = [
    'CONFUSION_MAX_ANNOTATED', 'Image', 'NO_HEAD', 'OTHER_SPACE', 'Paragraph',
    'Section', 'TOP_ROWS', 'Table', 'build_sections', 'class_errors',
    'class_predictions', 'confusion_data', 'plot_confusion_matrix',
    'render_html', 'render_markdown', 'run_metrics', 'silhouette_by_class',
    'write_report',
]
