"""The embedding plot: a 2-D or 3-D scatter coloured by class.

:func:`plot_embedding` colours by class (the reference's plot) and saves a
PNG; :func:`build_embedding_figure` builds the same figure without saving.
"""
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .figure import (
    AUTO_LEGEND_MAX_CLASSES,
    _add_legend,
    _auto_point_size,
    _check_inputs,
    _normalise,
    _save_png_atomic,
    _scatter_axes,
)
from .palette import class_palette


def _draw(fig, coords, labels, class_names, title, legend, point_size):
    """Draw the scatter (and legend) of the embedding onto ``fig``."""
    coords, labels, classes, names = _check_inputs(coords, labels, class_names)
    n_points, dim = coords.shape
    xyz = _normalise(coords)

    # Colour by rank among the classes present, not by raw id, so a subset
    # such as ids {3, 7, 9} gets three of the most distinct colours.
    colors = np.array(class_palette(len(classes)))
    point_colors = colors[np.searchsorted(classes, labels)]

    # Datasets usually come sorted by class; drawn in that order, the last
    # classes would cover the first ones wherever they overlap.
    order = np.random.default_rng(0).permutation(n_points)
    size = _auto_point_size(n_points) if point_size is None else point_size
    style = dict(s=size, c=point_colors[order], linewidths=0,
                 alpha=1.0 if n_points <= 10_000 else 0.6,
                 # Agg draws one bitmap instead of 100k marker paths, and any
                 # vector output stays small.
                 rasterized=True)

    ax = _scatter_axes(fig, xyz, order, style, title)

    if legend is None:
        legend = len(classes) <= AUTO_LEGEND_MAX_CLASSES
    if legend:
        _add_legend(ax, colors, names)
    return fig


def build_embedding_figure(coords, labels, class_names, title='', legend=None,
                           point_size=None):
    """Build the figure that :func:`plot_embedding` saves, without saving it.

    The figure has an Agg canvas and is not registered with pyplot, so it
    needs no ``plt.close`` and never opens a window. Arguments are as for
    :func:`plot_embedding`.

    Args:
        coords (array-like): Embedding, shape (N, 2) or (N, 3).
        labels (array-like): Integer class id of each point, shape (N,).
        class_names (Sequence[str] | Mapping[int, str]): Name of each class,
            looked up as ``class_names[label]``.
        title (str): Axes title. Defaults to ''.
        legend (bool | None): None shows it for at most 30 classes. Defaults
            to None.
        point_size (float | None): Marker area in points^2; None picks one
            from N. Defaults to None.

    Returns:
        matplotlib.figure.Figure: The figure, one axes (3-D for 3-D coords).

    Raises:
        ValueError: On malformed coords or labels, or a label without a name.

    Examples:
        >>> fig = build_embedding_figure([[0, 0], [1, 1]], [0, 1], ['a', 'b'])
        >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        ['a', 'b']
    """
    fig = Figure(figsize=(8, 8))
    FigureCanvasAgg(fig)
    return _draw(fig, coords, labels, class_names, title, legend, point_size)


def plot_embedding(coords, labels, class_names, out_path, title='',
                   legend=None, show=False, point_size=None):
    """Scatter-plot an embedding coloured by class and save it as a PNG.

    Each axis is min-max scaled to [0, 1] as in mmpretrain's
    ``tools/visualization/vis_tsne.py`` (an axis with zero range goes to
    0.5). A 3-D embedding gives a real 3-D scatter (``projection='3d'``).
    Colours come from :func:`class_palette`, assigned in order of the class
    ids present. The legend, one entry per class present in class-id order,
    sits outside the axes so it never hides points. Points are drawn in a
    fixed shuffled order so no class is always on top.

    Without ``show`` the figure is rendered by the Agg backend directly and
    pyplot is never touched; with ``show`` it is a pyplot figure, shown with
    ``plt.show()`` after saving and closed afterwards. The PNG is written to
    a temporary file in the same directory and renamed into place, so a
    crash never leaves a half-written ``out_path``.

    Args:
        coords (array-like): Embedding, shape (N, 2) or (N, 3), finite.
        labels (array-like): Integer class id of each point, shape (N,),
            ids >= 0. Any ids may occur, e.g. 3, 7 and 9 of a subset.
        class_names (Sequence[str] | Mapping[int, str]): Name of each class,
            indexed by label id: ``class_names[label]`` is the name of
            ``label``, so for ids 3, 7, 9 a list needs at least 10 entries
            (typically the dataset's full class list).
        out_path (str | os.PathLike): Where to write the PNG; must end in
            ``.png``. Missing parent directories are created.
        title (str): Axes title, e.g. stage, backend and perplexity.
            Defaults to ''.
        legend (bool | None): True always shows the legend (in several
            columns for more than 30 classes), False never does, None shows
            it when at most 30 classes are present. Defaults to None.
        show (bool): Also display the figure with ``plt.show()`` after
            saving. Defaults to False.
        point_size (float | None): Marker area in points^2; None picks one
            from N (about 40 for 100 points, 1 for 100k). Defaults to None.

    Returns:
        str: ``out_path`` as a string.

    Raises:
        ValueError: On malformed coords or labels, a label without a name in
            ``class_names``, or an ``out_path`` not ending in ``.png``.

    Examples:
        >>> import numpy as np
        >>> xy = np.random.default_rng(0).normal(size=(200, 2))
        >>> plot_embedding(xy, np.arange(200) % 3, ['cat', 'dog', 'bird'],
        ...                '/tmp/emb.png', title='backbone | openTSNE | p=30')
        '/tmp/emb.png'
    """
    out_path = os.fspath(out_path)
    if not out_path.lower().endswith('.png'):
        raise ValueError(f'out_path must end in .png, got {out_path!r}')
    if not show:
        _save_png_atomic(build_embedding_figure(
            coords, labels, class_names, title, legend, point_size), out_path)
        return out_path

    # Imported only here: pyplot picks and may start a GUI backend.
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(8, 8))
    try:
        _draw(fig, coords, labels, class_names, title, legend, point_size)
        _save_png_atomic(fig, out_path)
        plt.show()
    finally:
        plt.close(fig)
    return out_path
