"""What the embedding plot and the view plots share.

Input checks, min-max scaling, the marker size, the 2-D or 3-D scatter
axes, the legend outside the axes, and saving a figure as a PNG that is
whole or absent.
"""
import math
import os

import numpy as np
from matplotlib.lines import Line2D

from tsneviz.fonts import cover_glyphs

#: Above this many classes the automatic legend is left out: it would be
#: taller than the plot and no one can match 30+ colours by eye anyway.
AUTO_LEGEND_MAX_CLASSES = 30

#: Resolution of the saved PNG.
DPI = 120

# Points at exactly 0 and 1 would be half cut off by the axes frame.
_MARGIN = 0.02


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


def _add_legend(ax, colors, names, title=None):
    """One round marker per entry, in columns, outside the axes."""
    cover_glyphs(names)  # before the legend's texts take their font
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


def _save_png_atomic(fig, out_path):
    """Save ``fig`` as PNG to ``out_path`` so that it is whole or absent."""
    from tsneviz.rundir import atomic_write

    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    # bbox_inches='tight' grows the image to take in the legend that sits
    # outside the axes.
    atomic_write(os.fspath(out_path), lambda f: fig.savefig(
        f, format='png', dpi=DPI, bbox_inches='tight'))
