"""Scatter plots of 2-D or 3-D embeddings, coloured by class."""

import colorsys
import functools
import math
import os
import uuid

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

#: Above this many classes the automatic legend is left out: it would be
#: taller than the plot and no one can match 30+ colours by eye anyway.
AUTO_LEGEND_MAX_CLASSES = 30

#: Resolution of the saved PNG.
DPI = 120

# Points at exactly 0 and 1 would be half cut off by the axes frame.
_MARGIN = 0.02

# Hue grid the palette draws from once the qualitative maps run out. 360
# steps is finer than anyone can tell apart; the greedy pick below takes
# the hues that are farthest from what is already used.
_HSV_GRID = 360
# Full saturation at two brightness levels: far from the muted tab colours,
# and the dark level doubles the number of hues that stay apart.
_HSV_LEVELS = ((1.0, 1.0), (1.0, 0.6))
# The greedy ordering is quadratic in the number of extra colours; past
# this (tens of thousands of classes) colours cannot be told apart anyway,
# so plain hue order is used.
_GREEDY_MAX = 2048


def _rgb_dist(a, b):
    """Euclidean RGB distances between every row of ``a`` and of ``b``."""
    a = np.asarray(a, dtype=float)[:, None, :3]
    b = np.asarray(b, dtype=float)[None, :, :3]
    return np.linalg.norm(a - b, axis=-1)


def _farthest_first(chosen, candidates, min_dist=None):
    """Append candidates to ``chosen``, always the one farthest from all.

    Picking the candidate with the largest distance to everything chosen so
    far both spreads colours out and makes consecutive class ids differ. With
    ``min_dist`` it stops once every remaining candidate is closer than that,
    which drops near-duplicates.
    """
    chosen = list(chosen)
    cand = np.asarray(candidates, dtype=float)
    if len(cand) == 0:
        return chosen
    nearest = _rgb_dist(cand, chosen).min(axis=1)
    available = np.ones(len(cand), dtype=bool)
    while available.any():
        best = int(np.argmax(np.where(available, nearest, -np.inf)))
        if min_dist is not None and nearest[best] < min_dist:
            break
        chosen.append(tuple(cand[best]))
        available[best] = False
        nearest = np.minimum(nearest,
                             _rgb_dist(cand, cand[best:best + 1])[:, 0])
    return chosen


@functools.lru_cache(maxsize=1)
def _qualitative_colors():
    """tab10, the light half of tab20, then tab20b/tab20c without near-twins.

    Returns:
        tuple: RGB tuples, prefix-stable: tab20's even entries are tab10.
    """
    tab20 = [tuple(c) for c in colormaps['tab20'].colors]
    # tab20 pairs each hue with a lighter twin; listing all dark ones first
    # makes the first ten exactly tab10 and keeps neighbours apart.
    base = tab20[0::2] + tab20[1::2]
    pair = _rgb_dist(tab20, tab20)
    np.fill_diagonal(pair, np.inf)
    # tab20b/tab20c hold shades almost equal to tab20 ones (e.g. #c7c7c7 and
    # #bdbdbd); matplotlib's own tab20 is the bar for "different enough".
    extra = [tuple(c) for name in ('tab20b', 'tab20c')
             for c in colormaps[name].colors]
    return tuple(_farthest_first(base, extra, min_dist=float(pair.min())))


@functools.lru_cache(maxsize=4)
def _hsv_colors(n_grid):
    """Fully saturated hues of an ``n_grid``-step grid, farthest first.

    Args:
        n_grid (int): Number of evenly spaced hues, alternating between the
            brightness levels.

    Returns:
        tuple: ``n_grid`` RGB tuples, ordered to follow the qualitative ones.
    """
    grid = [colorsys.hsv_to_rgb(i / n_grid, *_HSV_LEVELS[i % len(_HSV_LEVELS)])
            for i in range(n_grid)]
    if n_grid > _GREEDY_MAX:
        return tuple(grid)
    qualitative = _qualitative_colors()
    return tuple(_farthest_first(qualitative, grid)[len(qualitative):])


def class_palette(n):
    """Return ``n`` distinct, deterministic class colours.

    Up to 10 classes this is matplotlib's ``tab10``; up to 20 the colours of
    ``tab20`` (its ten dark colours, equal to ``tab10``, then their light
    twins, so neighbouring ids never get two shades of one hue). Beyond that
    come ``tab20b`` and ``tab20c`` with near-duplicates of earlier colours
    removed (47 qualitative colours in all), each next colour the one farthest
    from all before it; then fully saturated HSV hues from an evenly spaced
    grid at alternating brightness, picked the same way. Up to about 115
    classes no two colours are closer in RGB than the closest pair inside
    ``tab20`` itself.

    The list is prefix-stable: ``class_palette(m) == class_palette(n)[:m]``
    for ``m <= n <= 407``, so a class keeps its colour when more are added.

    Args:
        n (int): Number of colours, 0 or more.

    Returns:
        list: ``n`` RGBA tuples of floats in [0, 1].

    Raises:
        ValueError: If ``n`` is negative.

    Examples:
        >>> colors = class_palette(3)
        >>> len(colors), colors[0][3]
        (3, 1.0)
        >>> len(set(class_palette(100)))
        100
    """
    n = int(n)
    if n < 0:
        raise ValueError(f'class_palette needs n >= 0, got {n}')
    rgb = list(_qualitative_colors()[:n])
    if n > len(rgb):
        # A fixed grid (unless more colours are needed than it has) keeps
        # the first classes' colours the same whatever n is.
        n_extra = n - len(rgb)
        rgb += _hsv_colors(max(_HSV_GRID, n_extra))[:n_extra]
    return [tuple(float(v) for v in to_rgba(c)) for c in rgb]


def _normalise(coords):
    """Min-max scale each column to [0, 1], as mmpretrain's vis_tsne does.

    A column with zero range (all points equal on that axis) would divide
    by zero; it is put at 0.5 instead, the middle of the plot.
    """
    lo = coords.min(axis=0)
    span = coords.max(axis=0) - lo
    flat = span == 0
    out = (coords - lo) / np.where(flat, 1.0, span)
    out[:, flat] = 0.5
    return out


def _auto_point_size(n_points):
    """Marker area in points^2 that neither hides structure nor vanishes.

    Roughly inversely proportional to sqrt(N): ~40 for 100 points, ~4 for
    10k, the 1.0 floor from ~160k on.
    """
    return float(np.clip(400.0 / math.sqrt(max(n_points, 1)), 1.0, 50.0))


def _check_inputs(coords, labels, class_names):
    """Validate and convert inputs; return coords, labels, classes, names."""
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] not in (2, 3):
        raise ValueError(
            f'coords must have shape (N, 2) or (N, 3), got {coords.shape}')
    if len(coords) == 0:
        raise ValueError('coords is empty: nothing to plot')
    if not np.isfinite(coords).all():
        raise ValueError('coords contain NaN or inf; check the embedding')
    labels = np.asarray(labels)
    if labels.shape != (len(coords),):
        raise ValueError(f'labels must have shape ({len(coords)},) to match '
                         f'coords, got {labels.shape}')
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f'labels must be integer class ids, got dtype {labels.dtype}')
    classes = np.unique(labels)
    if classes[0] < 0:
        # A negative id would silently pick a name from the end of a list.
        raise ValueError(f'labels must be >= 0, got {int(classes[0])}')
    names = []
    for c in classes:
        try:
            names.append(str(class_names[int(c)]))
        except (IndexError, KeyError) as exc:
            raise ValueError(
                f'label {int(c)} has no entry in class_names '
                f'({len(class_names)} names); class_names[label] must be '
                'the name of each label id') from exc
    return coords, labels, classes, names


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

    if dim == 3:
        ax = fig.add_subplot(projection='3d')
        # Depth shading fades far points, so their colour no longer matches
        # the legend (and tab20's light twins look like faded dark ones).
        ax.scatter(xyz[order, 0], xyz[order, 1], xyz[order, 2],
                   depthshade=False, **style)
        ax.set_zlim(-_MARGIN, 1 + _MARGIN)
        ax.set_box_aspect((1, 1, 1))
        # Axis values of a t-SNE map carry no meaning; the grid alone is
        # kept because it is the depth cue.
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_ticklabels([])
    else:
        ax = fig.add_subplot()
        ax.scatter(xyz[order, 0], xyz[order, 1], **style)
        ax.set_aspect('equal')
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_xlim(-_MARGIN, 1 + _MARGIN)
    ax.set_ylim(-_MARGIN, 1 + _MARGIN)
    if title:
        ax.set_title(title)

    if legend is None:
        legend = len(classes) <= AUTO_LEGEND_MAX_CLASSES
    if legend:
        handles = [Line2D([], [], linestyle='none', marker='o', markersize=6,
                          markeredgewidth=0, markerfacecolor=color, label=name)
                   for color, name in zip(colors, names)]
        # 30 rows fit beside the plot; for hundreds of classes columns grow
        # longer too, so the legend does not become many times wider.
        rows = max(AUTO_LEGEND_MAX_CLASSES,
                   math.ceil(2 * math.sqrt(len(names))))
        ax.legend(handles=handles, loc='upper left',
                  bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  ncols=math.ceil(len(names) / rows),
                  fontsize='small' if len(names) <= 60 else 'x-small',
                  frameon=False)
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


def _save_png_atomic(fig, out_path):
    """Save ``fig`` as PNG to ``out_path`` so that it is whole or absent."""
    directory = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(directory, exist_ok=True)
    # Same directory, so os.replace is a rename on one file system; a dot
    # name so a half-written file is not mistaken for a result. open('xb')
    # rather than mkstemp so the PNG gets the usual umask permissions.
    tmp = os.path.join(directory, f'.{os.path.basename(out_path)}.'
                                  f'{uuid.uuid4().hex}.tmp')
    try:
        with open(tmp, 'xb') as f:
            # bbox_inches='tight' grows the image to take in the legend
            # that sits outside the axes.
            fig.savefig(f, format='png', dpi=DPI, bbox_inches='tight')
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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
