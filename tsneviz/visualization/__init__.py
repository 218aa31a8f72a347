"""Scatter plots of 2-D or 3-D embeddings, coloured by class or by a view.

:func:`plot_embedding` colours by class (the reference's plot);
:func:`plot_view` colours by ground truth, prediction, correct vs
misclassified, cluster or loss, and :func:`render_views` draws those views
of a run directory as ``<key>_<view>.png``.

Modules: :mod:`.palette` (class colours), :mod:`.figure` (what the plots
share: input checks, scatter axes, legend, atomic PNG), :mod:`.embedding`
(the plot by class), :mod:`.views` (what each view colours) and
:mod:`.render` (view figures and a run's view PNGs).
"""
from .embedding import build_embedding_figure, plot_embedding
from .figure import AUTO_LEGEND_MAX_CLASSES, DPI
from .palette import class_palette
from .render import build_view_figure, plot_view, render_views
from .views import (
    BACKGROUND,
    HIGHLIGHT,
    LOSS_CMAP,
    PREDICTION_VIEWS,
    VIEWS,
    ViewStyle,
    default_views,
    view_style,
)

__all__ = [
    'AUTO_LEGEND_MAX_CLASSES', 'BACKGROUND', 'DPI', 'HIGHLIGHT', 'LOSS_CMAP',
    'PREDICTION_VIEWS', 'VIEWS', 'ViewStyle', 'build_embedding_figure',
    'build_view_figure', 'class_palette', 'default_views', 'plot_embedding',
    'plot_view', 'render_views', 'view_style',
]
