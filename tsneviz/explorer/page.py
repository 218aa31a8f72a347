"""The explorer page: the Bokeh scatter and ``index.html`` around it.

:func:`figure` builds the Bokeh document (one mapper per colour mode, the
overlays for selection and focus, tools that forward their events to the
page's script); :func:`render` fills the page template
(``templates/index.html.j2``) with it, the package's CSS and JavaScript
(``static/``) and Bokeh's own script, inlined so the page opens from
``file://`` with no network.
"""
import functools
from importlib import resources

import numpy as np

from tsneviz.explorer.config import CONFIG_ID
from tsneviz.explorer.data import GREY

__all__ = ['COLOR_MODES', 'SELECTION_SHOWN', 'figure', 'render']

#: Colour modes (value, label), in the order of the page's menu.
COLOR_MODES = (('gt', 'label'), ('pred', 'prediction'),
               ('correct', 'correct / misclassified'), ('cluster', 'cluster'),
               ('loss', 'loss'), ('reliability', 'map reliability'))

#: Thumbnails drawn in the selection panel; the download holds them all.
SELECTION_SHOWN = 120


@functools.lru_cache(maxsize=None)
def _resource(*parts: str) -> str:
    """Text of a file shipped in this package (``static/``, ``templates/``).
    """
    path = resources.files(__package__).joinpath(*parts)
    return path.read_text(encoding='utf-8')


def _point_size(n: int) -> float:
    """Marker diameter in screen pixels: big for hundreds, 3 px at 10k+."""
    return float(np.clip(120.0 / np.sqrt(max(n, 1)), 3.0, 10.0))


def _mappers(data: dict, legend: dict, has_cluster: bool) -> dict:
    """One colour mapper per mode, named ``mapper-<mode>`` for the script.

    Also records the loss colour bar's range and colours in ``legend``.
    """
    from bokeh.models import LinearColorMapper, LogColorMapper
    from bokeh.palettes import Viridis256

    palette = legend['palette']
    mappers = dict(
        gt=LinearColorMapper(name='mapper-gt', palette=palette,
                             low=-0.5, high=len(palette) - 0.5,
                             low_color=GREY, high_color=GREY),
        pred=LinearColorMapper(name='mapper-pred',
                               palette=legend['pred_palette'],
                               low=-0.5,
                               high=len(legend['pred_palette']) - 0.5,
                               low_color=GREY, high_color=GREY),
        correct=LinearColorMapper(name='mapper-correct',
                                  palette=['#d62728', '#2ca02c'],
                                  low=-0.5, high=1.5, low_color=GREY,
                                  high_color=GREY))
    if has_cluster:
        items = legend['legends']['cluster']
        colors = [item['color'] for item in items if item['value'] >= 0]
        top = max([item['value'] for item in items] + [0])
        full = [GREY] * (top + 1)
        for item in items:
            if item['value'] >= 0:
                full[item['value']] = item['color']
        mappers['cluster'] = LinearColorMapper(
            name='mapper-cluster', palette=full or colors or [GREY],
            low=-0.5, high=top + 0.5, low_color=GREY, high_color=GREY)
    loss = data['loss'][np.isfinite(data['loss'])]
    # loss spans decades (1e-4 for easy samples, 5+ for wrong ones): a log
    # scale from the 1st percentile keeps both ends apart
    low = float(max(np.percentile(loss, 1), 1e-6)) if len(loss) else 1e-3
    high = float(max(loss.max(), low * 10)) if len(loss) else 1.0
    mappers['loss'] = LogColorMapper(
        name='mapper-loss', palette=Viridis256, low=low, high=high,
        low_color=Viridis256[0], high_color=Viridis256[-1], nan_color=GREY)
    legend['loss_range'] = [low, high]
    legend['loss_colors'] = [Viridis256[i] for i in range(0, 256, 32)] + \
        [Viridis256[-1]]
    mappers.update(_reliability_mapper(data, legend))
    return mappers


def _reliability_mapper(data: dict, legend: dict) -> dict:
    """The ``reliability`` mode's mapper, where the run measured it.

    A linear scale over the column's whole range, [0, 1]; its colour bar
    (``reliability_colors``) goes into ``legend``, whose presence offers
    the mode in the page's menu.
    """
    from bokeh.models import LinearColorMapper
    from bokeh.palettes import Viridis256

    values = data.get('reliability')
    if values is None or not np.isfinite(values).any():
        return {}
    legend['reliability_colors'] = [Viridis256[i]
                                    for i in range(0, 256, 32)] + \
        [Viridis256[-1]]
    return dict(reliability=LinearColorMapper(
        name='mapper-reliability', palette=Viridis256, low=0.0, high=1.0,
        nan_color=GREY))


def figure(data: dict, legend: dict, has_cluster: bool, placed=()):
    """The Bokeh scatter, its models named for the page's script.

    Args:
        data (dict): Plot columns (:func:`tsneviz.explorer.data.columns`).
        legend (dict): :func:`tsneviz.explorer.data.legends`; the loss
            colour bar (``loss_range``, ``loss_colors``) is added to it.
        has_cluster (bool): Whether to colour by cluster too.
        placed (Sequence[dict]): Placed layers
            (:func:`tsneviz.explorer.data.placed_columns`), each drawn by
            its own renderer ``tsneviz-placed-<i>``. Defaults to none.

    Returns:
        bokeh.plotting.figure: The plot (``tsneviz-plot``) with the sources
        ``tsneviz-source``, ``-chosen``, ``-focus``, ``-near``, the filter
        ``tsneviz-filter`` and the mappers ``mapper-<mode>``.
    """
    from bokeh.events import SelectionGeometry
    from bokeh.models import (
        BoxSelectTool,
        CDSView,
        ColumnDataSource,
        CustomJS,
        HoverTool,
        IndexFilter,
        LassoSelectTool,
        PanTool,
        ResetTool,
        TapTool,
        WheelZoomTool,
    )
    from bokeh.plotting import figure as bokeh_figure

    n = len(data['x'])
    mappers = _mappers(data, legend, has_cluster)
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
    plot = bokeh_figure(name='tsneviz-plot', output_backend='webgl',
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
    _add_placed(plot, placed, n)
    # the selection, and rings around the focused sample and its
    # neighbours; none of them hit-tested. On Bokeh's overlay layer: a
    # change to them repaints that layer only, not the points under them
    # (a repaint of a million points on the canvas takes seconds). The
    # selection is one image over the frame that the page draws a ring
    # per point into: a marker per point would cost seconds to draw for
    # half a million points, at every repaint of the layer (each move of
    # the next lasso). The 1x1 blank image gives the script its type.
    chosen = ColumnDataSource(data=dict(
        image=[np.zeros((1, 1), np.uint32)], x=[0.0], y=[0.0], dw=[0.0],
        dh=[0.0]), name='tsneviz-chosen')
    marks = plot.image_rgba(image='image', x='x', y='y', dw='dw', dh='dh',
                            source=chosen, origin='top_left',
                            anchor='top_left', level='overlay')
    focus = ColumnDataSource(data=dict(x=[], y=[]), name='tsneviz-focus')
    near = ColumnDataSource(data=dict(x=[], y=[]), name='tsneviz-near')
    plot.scatter('x', 'y', source=near, size=max(_point_size(n) + 8, 12),
                 fill_alpha=0, line_color='#ff7f0e', line_width=2,
                 level='overlay')
    plot.scatter('x', 'y', source=focus, size=max(_point_size(n) + 12, 16),
                 fill_alpha=0, line_color='#000000', line_width=3,
                 level='overlay')
    # the selection's image spans the view: fitting the view to it would
    # widen the view at every redraw
    fitted = [r for r in plot.renderers if r is not marks]
    plot.x_range.renderers = fitted
    plot.y_range.renderers = list(fitted)
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


def _add_placed(plot, layers, n: int) -> None:
    """Each placed layer as black stars above the map, with a hover of its
    own (path, label, prediction, nearest map samples); the page's script
    shows and hides them (``tsneviz-placed-<i>``)."""
    from bokeh.models import ColumnDataSource, HoverTool

    renderers = []
    for i, layer in enumerate(layers):
        source = ColumnDataSource(data=layer['data'],
                                  name=f'tsneviz-placed-source-{i}')
        renderers.append(plot.scatter(
            'x', 'y', source=source, name=f'tsneviz-placed-{i}',
            marker='star', size=max(_point_size(n) + 6, 12),
            fill_color='#000000', line_color='#ffffff', line_width=0.8))
    if renderers:
        plot.add_tools(HoverTool(
            name='tool-hover-placed', renderers=renderers,
            tooltips=[('placed', '@path'), ('label', '@label'),
                      ('prediction', '@pred'), ('nearest', '@nn')]))


def render(title: str, config: dict, meta: dict, plot) -> str:
    """``index.html``: the page template filled in.

    Args:
        title (str): Page title (text, escaped here).
        config (dict): The URL config block
            (:data:`tsneviz.explorer.config.DEFAULT_CONFIG` and ``run``).
        meta (dict): What the script reads from the ``tsneviz-data``
            block: sizes, ``k``, ``legends`` and so on;
            ``has_label_issues`` offers the suspected-label-errors filter;
            ``axes_note`` (:func:`tsneviz.rundir.flat_view_note`), where
            set, is shown in the header.
        plot: The Bokeh plot (:func:`figure`).

    Returns:
        str: The page's HTML.
    """
    import jinja2
    from bokeh.embed import json_item
    from bokeh.resources import Resources

    script = _resource('static', 'explorer.js')
    if '</script' in script.lower():
        # inlined as it is, so it must not end its own element
        raise ValueError('static/explorer.js contains "</script"')
    env = jinja2.Environment(autoescape=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    # compact JSON: the plot item's binary columns are most of the page,
    # and sorting its keys would only cost time
    env.policies['json.dumps_kwargs'] = dict(separators=(',', ':'))
    template = env.from_string(_resource('templates', 'index.html.j2'))
    # bokeh core + its WebGL part only: no widgets/tables/mathjax (-60%)
    bokeh = Resources(mode='inline', components=['bokeh', 'bokeh-gl'])
    modes = [(value, label) for value, label in COLOR_MODES
             if value not in ('cluster', 'correct')
             or value in meta['legends']['legends']]
    if 'reliability_colors' not in meta['legends']:
        modes = [mode for mode in modes if mode[0] != 'reliability']
    return template.render(
        title=title, color_modes=modes, config_id=CONFIG_ID, config=config,
        has_label_issues=bool(meta.get('has_label_issues')),
        axes_note=meta.get('axes_note') or '',
        meta=meta, item=json_item(plot), css=_resource('static',
                                                       'explorer.css'),
        script=script, bokeh_js=bokeh.render_js())
