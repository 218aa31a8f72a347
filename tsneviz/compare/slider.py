"""A page with a slider across checkpoints: one Bokeh scatter, offline.

Built as the run explorer's page is (Bokeh, resources inlined, opens from
``file://`` with no network), but on its own: one scatter whose points
move to the map of the checkpoint the slider is on, with each sample's
class, index, image and true-class confidence at that checkpoint on hover.
The page's models are named so that scripts and tests can read them:
``points`` (the data source; ``x``/``y`` are the shown checkpoint's map),
``checkpoint`` (the slider, 1-based) and ``frames`` (every map).
"""
import pathlib
from typing import List, Optional, Sequence

import numpy as np

from tsneviz.rundir import write_text

_HOVER = """
<div style="max-width:220px">
  <img src="@image" width="64" height="64"
       style="image-rendering:pixelated;float:left;margin-right:6px">
  <div><b>@gt_class</b> · index @index</div>
  <div>p(true class): @confidence{0.000}</div>
  <div>moved in total: @moved{0.00}</div>
</div>
"""

# On a slider move: the points take the chosen checkpoint's map (and its
# confidences); the title names the checkpoint.
_ON_SLIDE = """
const i = slider.value - 1;
const data = Object.assign({}, points.data);
data.x = frames.data.x[i];
data.y = frames.data.y[i];
data.confidence = frames.data.confidence[i];
points.data = data;
plot.title.text = frames.data.title[i];
"""


def write_slider_page(coords: np.ndarray, labels: np.ndarray,
                      class_names: Sequence[str], indices: Sequence[int],
                      image_paths: Sequence[str], titles: Sequence[str],
                      confidences: Optional[np.ndarray],
                      moved: np.ndarray, out_path: str,
                      page_title: str) -> int:
    """Write the slider page.

    Args:
        coords (np.ndarray): (T, N, 2) maps in one frame.
        labels (np.ndarray): (N,) class ids (colours).
        class_names (Sequence[str]): (N,) class name per sample.
        indices (Sequence[int]): (N,) dataset index per sample.
        image_paths (Sequence[str]): (N,) absolute image paths.
        titles (Sequence[str]): (T,) plot title per checkpoint.
        confidences (np.ndarray, optional): (T, N) p(true class), NaN where
            a checkpoint has none; None for no head at all.
        moved (np.ndarray): (N,) distance moved in total.
        out_path (str): The HTML file to write (atomically).
        page_title (str): The page's title.

    Returns:
        int: The number of points on the page.
    """
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.models import (
        ColumnDataSource,
        CustomJS,
        HoverTool,
        Range1d,
        Slider,
    )
    from bokeh.plotting import figure
    from bokeh.resources import INLINE
    from matplotlib.colors import to_hex

    from tsneviz.compare.animation import class_colors, shared_limits

    n_frames, n = coords.shape[:2]
    if confidences is None:
        confidences = np.full((n_frames, n), np.nan)
    frames = ColumnDataSource(dict(
        x=[c[:, 0].tolist() for c in coords],
        y=[c[:, 1].tolist() for c in coords],
        confidence=[_finite(c) for c in confidences],
        title=list(titles)), name='frames')
    points = ColumnDataSource(dict(
        x=coords[0, :, 0].tolist(), y=coords[0, :, 1].tolist(),
        confidence=_finite(confidences[0]),
        color=[to_hex(c) for c in class_colors(labels)],
        gt_class=[str(c) for c in class_names],
        index=[int(i) for i in indices],
        image=_uris(image_paths), moved=np.asarray(moved).tolist()),
        name='points')
    limits = shared_limits(coords)
    plot = figure(title=titles[0], width=760, height=700,
                  tools='pan,wheel_zoom,box_zoom,reset',
                  x_range=Range1d(*limits[0]), y_range=Range1d(*limits[1]),
                  match_aspect=True, name='map')
    plot.scatter('x', 'y', source=points, color='color', size=6,
                 alpha=0.85, legend_group='gt_class')
    plot.add_tools(HoverTool(tooltips=_HOVER))
    plot.legend.location = 'top_left'
    plot.legend.label_text_font_size = '9pt'
    plot.axis.visible = False
    slider = Slider(start=1, end=max(n_frames, 2), value=1, step=1,
                    title='checkpoint', width=760, name='checkpoint',
                    disabled=n_frames < 2)
    slider.js_on_change('value', CustomJS(
        args=dict(slider=slider, points=points, frames=frames, plot=plot),
        code=_ON_SLIDE))
    html = file_html(column(slider, plot), resources=INLINE,
                     title=page_title)
    write_text(out_path, html)
    return n


def _finite(values) -> List[Optional[float]]:
    # JSON has no NaN: a checkpoint without confidence shows as "???"
    return [float(v) if np.isfinite(v) else None for v in values]


def _uris(paths: Sequence[str]) -> List[str]:
    return [pathlib.Path(p).as_uri() if p else '' for p in paths]
