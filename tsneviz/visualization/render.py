"""Drawing views: one figure per view, and a run's views as PNGs.

:func:`plot_view` saves one view of an embedding; :func:`render_views`
draws views of a run directory as ``<key>_<view>.png``.
"""
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .figure import (
    AUTO_LEGEND_MAX_CLASSES,
    _add_legend,
    _check_inputs,
    _normalise,
    _save_png_atomic,
    _scatter_axes,
)
from .views import (
    _NO_PREDICTIONS,
    _OTHER_SPACE,
    _TITLES,
    LOSS_CMAP,
    PREDICTION_VIEWS,
    VIEWS,
    _user_error,
    default_views,
    view_style,
)


def build_view_figure(coords, table, view, title='', label_space=None,
                      size_by_loss=False, legend=None, point_size=None):
    """Build the figure that :func:`plot_view` saves, without saving it.

    Arguments are as for :func:`plot_view`.

    Returns:
        matplotlib.figure.Figure: One axes (3-D for 3-D coords), plus a
        colorbar axes for the loss view.

    Examples:
        >>> fig = build_view_figure([[0, 0], [1, 1]], dict(
        ...     gt_label=[0, 1], pred_label=[0, 0], loss=[.1, 3.]), 'loss')
        >>> len(fig.axes)
        2
    """
    coords = np.asarray(coords, dtype=float)
    _check_inputs(coords, np.zeros(len(coords), dtype=np.int64), ['-'])
    if len(table['gt_label']) != len(coords):
        raise ValueError(f'the table has {len(table["gt_label"])} rows for '
                         f'{len(coords)} points')
    style = view_style(table, view, label_space, size_by_loss, point_size)
    fig = Figure(figsize=(8, 8))
    FigureCanvasAgg(fig)
    order = style.order
    ax = _scatter_axes(fig, _normalise(coords), order,
                       dict(s=style.sizes[order], c=style.colors[order],
                            linewidths=0,
                            alpha=1.0 if len(coords) <= 10_000 else 0.6,
                            rasterized=True), title)
    if style.norm is not None:
        from matplotlib.cm import ScalarMappable
        fig.colorbar(ScalarMappable(norm=style.norm, cmap=LOSS_CMAP), ax=ax,
                     shrink=0.7, pad=0.02,
                     label='loss' + (' (log scale)' if type(
                         style.norm).__name__ == 'LogNorm' else ''))
    if legend is None:
        legend = 0 < len(style.legend) <= AUTO_LEGEND_MAX_CLASSES + 1
    if legend and style.legend:
        names, colors = zip(*style.legend)
        _add_legend(ax, colors, names, style.legend_title)
    return fig


def plot_view(coords, table, view, out_path, title='', label_space=None,
              size_by_loss=False, legend=None, point_size=None):
    """Scatter-plot an embedding coloured by one view and save a PNG.

    Views (:data:`VIEWS`): ``label`` (ground truth), ``prediction``,
    ``errors`` (correct small and grey, misclassified large and red),
    ``cluster`` (id from the ``cluster`` column, noise grey) and ``loss``
    (log-scaled colormap with a colorbar). The PNG is written atomically,
    like :func:`plot_embedding`.

    Args:
        coords (array-like): Embedding, shape (N, 2) or (N, 3).
        table (dict): Per-sample columns, N rows (see :func:`view_style`).
        view (str): One of :data:`VIEWS`.
        out_path (str | os.PathLike): PNG to write; must end in ``.png``.
        title (str): Axes title. Defaults to ''.
        label_space (LabelSpace, optional): As in :func:`view_style`.
            Defaults to None.
        size_by_loss (bool): Marker area follows the loss. Defaults to
            False.
        legend (bool | None): None shows it for at most 30 entries.
            Defaults to None.
        point_size (float | None): Normal marker area; None picks one from
            N. Defaults to None.

    Returns:
        str: ``out_path`` as a string.

    Raises:
        UserError: If the table lacks what the view shows (e.g. errors of a
            run without predictions).
        ValueError: On malformed coords, an unknown view or a bad path.

    Examples:
        >>> run = Run('work_dirs/digits/tsne_20261123_144017')
        >>> plot_view(run.coords(), run.table, 'errors', '/tmp/errors.png',
        ...           size_by_loss=True)
        '/tmp/errors.png'
    """
    out_path = os.fspath(out_path)
    if not out_path.lower().endswith('.png'):
        raise ValueError(f'out_path must end in .png, got {out_path!r}')
    _save_png_atomic(build_view_figure(coords, table, view, title,
                                       label_space, size_by_loss, legend,
                                       point_size), out_path)
    return out_path


def render_views(run_dir, views=None, key=None, size_by_loss=None,
                 legend=None):
    """Draw views of a run as ``<key>_<view>.png`` and list them in run.json.

    Args:
        run_dir (str): A complete run directory.
        views (Sequence[str], optional): Views to draw (:data:`VIEWS`).
            None draws ``label`` and, for a run with predictions,
            ``errors``; a run without them gets the label view only and a
            warning says why. Defaults to None.
        key (str, optional): Feature key whose embedding to draw; None takes
            the run's first. Defaults to None.
        size_by_loss (bool | None): Marker area follows the loss; None does
            so for the errors view only. Defaults to None.
        legend (bool | None): As in :func:`plot_view`. Defaults to None.

    Returns:
        list[str]: Paths of the PNGs written.

    Raises:
        UserError: For an unknown view or key, or a prediction view asked
            of a run without predictions.

    Examples:
        >>> render_views('work_dirs/digits/tsne_20261123_144017',
        ...              views=('errors', 'loss'))
        ['.../feat_3_errors.png', '.../feat_3_loss.png']
    """
    from tsneviz import rundir
    run = rundir.Run(run_dir)
    key = run.key(key)
    space = run.label_space
    if views is None:
        views = default_views(run.has_predictions, space.matched)
        if not run.has_predictions:
            from mmengine.logging import MMLogger
            MMLogger.get_current_instance().warning(
                'render_views: %s; drawing the label view only',
                _NO_PREDICTIONS)
    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise _user_error(f'unknown view {unknown[0]!r}; choose from '
                          f'{", ".join(VIEWS)}')
    if not run.has_predictions and any(v in PREDICTION_VIEWS for v in views):
        raise _user_error(f'{run_dir}: {_NO_PREDICTIONS}')
    coords = run.coords(key)
    written = []
    for view in views:
        by_loss = (view == 'errors' and 'loss' in run.table) \
            if size_by_loss is None else size_by_loss
        title = f'{key} · {_TITLES[view]}'
        if view == 'errors':
            correct = space.correct(run.labels, run.table['pred_label'])
            if correct is None:
                raise _user_error(f'{run_dir}: {_OTHER_SPACE}')
            n_wrong = int((~correct).sum())
            title += f': {n_wrong} of {len(coords)}'
        if view == 'cluster' and 'clusters' in run.manifest:
            info = run.manifest['clusters']
            title += f' ({info.get("method")} on the {info.get("on")})'
        if by_loss:
            title += ' · size: loss'
        written.append(plot_view(
            coords, run.table, view,
            os.path.join(run_dir, rundir.plot_file(key, view)), title=title,
            label_space=space, size_by_loss=by_loss, legend=legend))
    # run.json last: it lists the new files once they all exist.
    rundir.update_manifest(run_dir, outputs=[os.path.basename(p)
                                             for p in written])
    return written
