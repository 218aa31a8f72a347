"""Scatter plots of 2-D or 3-D embeddings, coloured by class or by a view.

:func:`plot_embedding` colours by class (the reference's plot);
:func:`plot_view` colours by ground truth, prediction, correct vs
misclassified, cluster or loss, and :func:`render_views` draws those views
of a run directory as ``<key>_<view>.png``.
"""

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


def _scatter_axes(fig, xyz, order, style, title):
    """Add the 2-D or 3-D axes to ``fig`` and scatter ``xyz`` in ``order``.

    ``style`` holds the ``scatter`` keywords; per-point ``c`` and ``s``
    must already be in ``order``.
    """
    if xyz.shape[1] == 3:
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
    return ax


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


def _add_legend(ax, colors, names, title=None):
    """One round marker per entry, in columns, outside the axes."""
    handles = [Line2D([], [], linestyle='none', marker='o', markersize=6,
                      markeredgewidth=0, markerfacecolor=color, label=name)
               for color, name in zip(colors, names)]
    # 30 rows fit beside the plot; for hundreds of classes columns grow
    # longer too, so the legend does not become many times wider.
    rows = max(AUTO_LEGEND_MAX_CLASSES,
               math.ceil(2 * math.sqrt(len(names))))
    ax.legend(handles=handles, loc='upper left', title=title,
              bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              ncols=max(1, math.ceil(len(names) / rows)),
              fontsize='small' if len(names) <= 60 else 'x-small',
              frameon=False)


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


#######################################################################
#                     Views: what the colour shows                     #
#######################################################################

#: Every view: ground truth, prediction, correct vs misclassified, cluster
#: id, per-sample loss.
VIEWS = ('label', 'prediction', 'errors', 'cluster', 'loss')

#: Views that need the model's predictions (a run with logits).
PREDICTION_VIEWS = ('prediction', 'errors', 'loss')

#: Correct samples in the errors view, and HDBSCAN noise in the cluster
#: view: light enough to recede behind what is highlighted.
BACKGROUND = (0.78, 0.78, 0.78, 1.0)
#: Misclassified samples in the errors view (matplotlib's tab:red).
HIGHLIGHT = tuple(float(v) for v in to_rgba('tab:red'))
#: Colormap of the loss view: reversed so that high loss is dark and stands
#: out on the white background, while near-zero loss is a light yellow.
LOSS_CMAP = 'viridis_r'
# Background points are drawn at this share of the normal marker area.
_SMALL = 0.5

_TITLES = {'label': 'ground truth', 'prediction': 'prediction',
           'errors': 'misclassified', 'cluster': 'cluster',
           'loss': 'loss'}


class ViewStyle:
    """Per-point colours and sizes of one view, and its legend or colorbar.

    Attributes:
        colors (np.ndarray): (N, 4) RGBA of each sample, in sample order.
        sizes (np.ndarray): (N,) marker areas in points^2.
        order (np.ndarray): Draw order (later points are on top).
        legend (list[tuple]): ``(name, rgba)`` entries; empty for the loss
            view.
        legend_title (str | None): Title of the legend.
        norm (matplotlib.colors.Normalize | None): Loss view only: the
            mapping of loss to the colormap, for the colorbar.
        highlighted (np.ndarray): (N,) bool, the samples the view singles
            out (misclassified in the errors view; none elsewhere).
    """

    def __init__(self, colors, sizes, order, legend, legend_title=None,
                 norm=None, highlighted=None):
        self.colors = np.asarray(colors, dtype=float)
        self.sizes = np.asarray(sizes, dtype=float)
        self.order = np.asarray(order)
        self.legend = legend
        self.legend_title = legend_title
        self.norm = norm
        self.highlighted = (np.zeros(len(self.colors), bool)
                            if highlighted is None else highlighted)


def _column(table, name, view, hint):
    if name not in table:
        raise _user_error(f'the {view} view needs the {name!r} column, '
                          f'which this run does not have: {hint}')
    return np.asarray(table[name])


def _user_error(message):
    # Imported here so that plotting alone never needs the CLI's error type.
    from tsneviz.errors import UserError
    return UserError(message)


_NO_PREDICTIONS = ('the run has no predictions (no classification head or '
                   'logits), so there is no prediction, errors or loss view')

_OTHER_SPACE = ('the model\'s classes are not the dataset\'s (see '
                'label_space in run.json), so predictions cannot be marked '
                'right or wrong; the prediction view shows them')


def _loss_share(loss):
    """Loss scaled to [0, 1] by the largest loss (NaN counts as 0).

    Linear, so the marker area is proportional to the loss: the few
    samples that cost the most are the big ones, not half the plot.
    """
    loss = np.nan_to_num(np.asarray(loss, dtype=float), nan=0.0)
    top = loss.max() if len(loss) else 0.0
    return np.clip(loss / top, 0, 1) if top > 0 else np.zeros_like(loss)


def _loss_norm(loss):
    """Log-scaled norm of the loss colormap.

    Cross-entropy of a trained model spans orders of magnitude (1e-4 for
    easy samples, several for the confidently wrong ones); on a linear
    scale all but a handful of points would share the lightest colour.
    """
    from matplotlib.colors import LogNorm, Normalize
    finite = loss[np.isfinite(loss)]
    positive = finite[finite > 0]
    if len(positive) == 0 or positive.max() <= positive.min():
        return Normalize(vmin=0.0, vmax=max(float(finite.max(initial=0)),
                                            1e-12))
    return LogNorm(vmin=float(positive.min()), vmax=float(positive.max()),
                   clip=True)


def view_style(table, view, label_space=None, size_by_loss=False,
               point_size=None):
    """Colours, sizes and draw order of the points of one view.

    ``label`` and ``prediction`` colour by class (the same colour for a
    class in both, as in :func:`plot_embedding`); ``errors`` draws correct
    samples small and grey and misclassified ones large and red on top;
    ``cluster`` colours by cluster id with HDBSCAN noise (``-1``) small and
    grey; ``loss`` maps the per-sample loss to a log-scaled colormap with
    the highest losses on top.

    Args:
        table (dict): Per-sample columns as in ``samples.csv``
            (``Run.table``): ``gt_label``; ``pred_label`` and ``loss`` for
            the prediction views; ``cluster`` for the cluster view.
        view (str): One of :data:`VIEWS`.
        label_space (LabelSpace, optional): Class names of the dataset and
            the model, and whether predictions compare with the truth
            (``Run.label_space``); None takes names from
            ``gt_class``/``pred_class`` and compares ids as they are.
            Defaults to None.
        size_by_loss (bool): Marker area grows with the loss (the errors
            view then keeps correct samples small and scales the
            misclassified ones). Defaults to False.
        point_size (float, optional): Normal marker area; None picks one
            from N. Defaults to None.

    Returns:
        ViewStyle: Per-point colours and sizes and the legend entries.

    Raises:
        UserError: If the table lacks what the view shows, e.g. the errors
            view of a run without predictions or with predictions in
            another label space.
        ValueError: For an unknown view.

    Examples:
        >>> style = view_style(dict(gt_label=[0, 1, 1], pred_label=[0, 0, 1],
        ...                         loss=[0.1, 2.0, 0.2]), 'errors')
        >>> style.highlighted.tolist()
        [False, True, False]
    """
    from tsneviz.labels import LabelSpace

    if view not in VIEWS:
        raise ValueError(f'unknown view {view!r}; choose from '
                         f'{", ".join(VIEWS)}')
    space = label_space or LabelSpace.assumed(None, table)
    gt = np.asarray(table['gt_label']).astype(np.int64)
    n = len(gt)
    if view in PREDICTION_VIEWS and 'pred_label' not in table:
        raise _user_error(_NO_PREDICTIONS)
    base = _auto_point_size(n) if point_size is None else float(point_size)
    loss = None
    if size_by_loss or view == 'loss':
        if 'loss' not in table:
            raise _user_error('size by loss needs per-sample loss: '
                              + _NO_PREDICTIONS)
        loss = np.asarray(table['loss'], dtype=float)
    share = _loss_share(loss) if size_by_loss else None
    sizes = (np.full(n, base) if share is None
             else base * (_SMALL + 3.5 * share))
    # A fixed shuffle so no group is always on top (see _draw).
    shuffled = np.random.default_rng(0).permutation(n)

    if view in ('label', 'prediction'):
        # Colours are ranked over the ground-truth classes present, as in
        # plot_embedding, so label view, prediction view and feat_<key>.png
        # agree (a prediction is coloured as the class it names, in the
        # model's space); a class only ever predicted gets a colour after
        # those.
        classes = [int(c) for c in np.unique(gt)]
        shown, name_of = gt, space.dataset_name
        if view == 'prediction':
            shown = np.asarray(table['pred_label']).astype(np.int64)
            name_of = space.model_name
            classes = [int(c) for c in space.to_model(classes)] \
                if space.matched else []
            classes += sorted(set(np.unique(shown).tolist()) - set(classes))
        palette = class_palette(len(classes))
        rank = {c: i for i, c in enumerate(classes)}
        colors = np.array([palette[rank[int(y)]] for y in shown])
        present = [c for c in classes if c in set(shown.tolist())]
        legend = [(name_of(c), palette[rank[c]]) for c in present]
        return ViewStyle(colors, sizes, shuffled, legend,
                         'predicted' if view == 'prediction' else None)

    if view == 'errors':
        correct = space.correct(gt, np.asarray(table['pred_label']))
        if correct is None:
            raise _user_error(_OTHER_SPACE)
        wrong = ~correct
        colors = np.where(wrong[:, None], HIGHLIGHT, BACKGROUND)
        if share is None:
            sizes = np.where(wrong, 2.0 * base, _SMALL * base)
        else:
            # Even the least costly error stays bigger than any correct one.
            sizes = np.where(wrong, base * (1.5 + 3.0 * share),
                             _SMALL * base)
        # Correct ones first, then the errors by rising loss: the worst
        # mistakes end on top.
        key = (np.nan_to_num(np.asarray(table['loss'], dtype=float),
                             nan=0.0) if 'loss' in table else np.zeros(n))
        order = np.concatenate([shuffled[~wrong[shuffled]],
                                np.flatnonzero(wrong)[
                                    np.argsort(key[wrong], kind='stable')]])
        legend = [(f'correct ({int((~wrong).sum())})', BACKGROUND),
                  (f'misclassified ({int(wrong.sum())})', HIGHLIGHT)]
        return ViewStyle(colors, sizes, order, legend, highlighted=wrong)

    if view == 'cluster':
        ids = _column(table, 'cluster', view,
                      'run tools/cluster.py on it first').astype(np.int64)
        clusters = [c for c in np.unique(ids) if c != -1]
        palette = class_palette(len(clusters))
        rank = {c: i for i, c in enumerate(clusters)}
        noise = ids == -1
        colors = np.array([BACKGROUND if c == -1 else palette[rank[c]]
                           for c in ids])
        sizes = np.where(noise, _SMALL * base, sizes)
        order = np.concatenate([shuffled[noise[shuffled]],
                                shuffled[~noise[shuffled]]])
        legend = [(str(c), palette[rank[c]]) for c in clusters]
        if noise.any():
            legend.append((f'noise ({int(noise.sum())})', BACKGROUND))
        return ViewStyle(colors, sizes, order, legend, 'cluster')

    # view == 'loss'
    from matplotlib import colormaps as cmaps
    norm = _loss_norm(loss)
    colors = cmaps[LOSS_CMAP](norm(np.nan_to_num(loss, nan=0.0)))
    order = np.argsort(np.nan_to_num(loss, nan=-np.inf), kind='stable')
    return ViewStyle(colors, sizes, order, [], norm=norm)


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


def default_views(has_predictions, matched=True):
    """The views :func:`render_views` draws when none are asked for.

    Ground truth, plus what the model gets wrong when the run has
    predictions of the dataset's classes, or the predictions themselves
    when they are of other classes.
    """
    if not has_predictions:
        return ('label',)
    return ('label', 'errors') if matched else ('label', 'prediction')


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
            os.path.join(run_dir, f'{key}_{view}.png'), title=title,
            label_space=space, size_by_loss=by_loss, legend=legend))
    # run.json last: it lists the new files once they all exist.
    rundir.update_manifest(run_dir, outputs=[os.path.basename(p)
                                             for p in written])
    return written
