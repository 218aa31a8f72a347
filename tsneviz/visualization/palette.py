"""Class colours: many distinct, deterministic, prefix-stable colours.

:func:`class_palette` is tab10, then tab20, then tab20b/tab20c without
near-twins, then fully saturated HSV hues, each next colour the one
farthest from all before it.
"""
import colorsys
import functools

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_rgba

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
