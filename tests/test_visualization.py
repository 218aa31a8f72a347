import os
import time

import matplotlib

matplotlib.use('Agg')  # noqa: E402  (tests must never open a window)

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.image import imread
from mpl_toolkits.mplot3d import Axes3D

from tsneviz.visualization import (build_embedding_figure, class_palette,
                                   plot_embedding)

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
NAMES = [f'class_{i}' for i in range(10)]


def _rgba(cmap):
    return [tuple(float(v) for v in to_rgba(c))
            for c in colormaps[cmap].colors]


def _pairwise_rgb(colors):
    rgb = np.array(colors)[:, :3]
    d = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return d


# Threshold: the closest pair inside matplotlib's own qualitative tab20
# (#aec7e8 vs #9edae5, RGB distance ~0.098) is, by that palette's design,
# still meant to be told apart; a longer palette must be no worse.
TAB20_MIN_DIST = _pairwise_rgb(_rgba('tab20')).min()


@pytest.fixture(autouse=True)
def _no_figures_before():
    plt.close('all')
    yield


def _subset_data(n_per_class=20, dim=2, seed=0):
    """Points of classes 3, 7, 9 whose first coordinate is the label."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([9, 3, 7], n_per_class)
    coords = rng.normal(size=(len(labels), dim))
    coords[:, 0] = labels
    return coords, labels


def _legend_texts(ax):
    legend = ax.get_legend()
    if legend is None:
        return None
    return [t.get_text() for t in legend.get_texts()]


def test_palette_small_is_tab10_then_tab20():
    assert class_palette(10) == _rgba('tab10')
    assert class_palette(4) == _rgba('tab10')[:4]
    assert set(class_palette(20)) == set(_rgba('tab20'))
    assert class_palette(0) == []


@pytest.mark.parametrize('n', [60, 100])
def test_palette_many_classes_distinct(n):
    colors = class_palette(n)
    assert len(colors) == n
    assert len(set(colors)) == n
    assert colors[:10] == _rgba('tab10')
    assert _pairwise_rgb(colors).min() >= TAB20_MIN_DIST - 1e-9
    # Consecutive class ids should differ far more than the closest pair.
    adjacent = np.linalg.norm(np.diff(np.array(colors)[:, :3], axis=0), axis=1)
    assert adjacent.min() >= 2 * TAB20_MIN_DIST


def test_palette_deterministic_prefix_stable_rgba():
    assert class_palette(100) == class_palette(100)
    assert class_palette(100)[:60] == class_palette(60)
    assert class_palette(60)[:20] == class_palette(20)
    assert len(set(class_palette(1000))) == 1000
    for color in class_palette(100):
        assert len(color) == 4 and color[3] == 1.0
        assert all(type(v) is float and 0.0 <= v <= 1.0 for v in color)
    with pytest.raises(ValueError, match='n >= 0'):
        class_palette(-1)


def test_figure_2d_normalised_coloured_with_outside_legend():
    coords, labels = _subset_data()
    fig = build_embedding_figure(coords, labels, NAMES, title='stage4 | p=30')
    ax, = fig.axes
    assert ax.name == 'rectilinear'
    assert ax.get_title() == 'stage4 | p=30'
    assert _legend_texts(ax) == ['class_3', 'class_7', 'class_9']

    scatter, = ax.collections
    xy = scatter.get_offsets()
    np.testing.assert_allclose(xy.min(axis=0), [0, 0])
    np.testing.assert_allclose(xy.max(axis=0), [1, 1])
    # x encodes the label: 3 -> 0, 7 -> 2/3, 9 -> 1; each class must get
    # its palette colour by rank among the classes present.
    rank = np.rint(xy[:, 0] * 6).astype(int)
    expected = np.array(class_palette(3))[np.searchsorted([0, 4, 6], rank)]
    np.testing.assert_allclose(scatter.get_facecolors()[:, :3],
                               expected[:, :3])

    fig.canvas.draw()
    legend_box = ax.get_legend().get_window_extent()
    assert legend_box.x0 >= ax.get_window_extent().x1


def test_figure_3d_is_real_3d():
    coords, labels = _subset_data(dim=3)
    fig = build_embedding_figure(coords, labels, NAMES)
    ax, = fig.axes
    assert isinstance(ax, Axes3D) and ax.name == '3d'
    assert _legend_texts(ax) == ['class_3', 'class_7', 'class_9']
    xyz = np.array(ax.collections[0]._offsets3d)
    assert xyz.shape == (3, len(labels))
    np.testing.assert_allclose(xyz.min(axis=1), [0, 0, 0])
    np.testing.assert_allclose(xyz.max(axis=1), [1, 1, 1])


def test_constant_axis_is_centred_not_nan():
    coords = np.column_stack([np.arange(5.0), np.full(5, 3.0)])
    fig = build_embedding_figure(coords, [0, 1, 0, 1, 0], ['a', 'b'])
    xy = fig.axes[0].collections[0].get_offsets()
    assert np.isfinite(xy).all()
    np.testing.assert_allclose(xy[:, 1], 0.5)


def test_class_names_mapping_accepted():
    coords, labels = _subset_data()
    names = {3: 'cat', 7: 'dog', 9: 'bird'}
    fig = build_embedding_figure(coords, labels, names)
    assert _legend_texts(fig.axes[0]) == ['cat', 'dog', 'bird']


@pytest.mark.parametrize('n_classes, legend, expect', [
    (30, None, True), (31, None, False), (3, False, False), (3, True, True)])
def test_legend_modes(n_classes, legend, expect):
    labels = np.arange(n_classes).repeat(2)
    coords = np.random.default_rng(0).normal(size=(len(labels), 2))
    names = [f'n{i}' for i in range(n_classes)]
    fig = build_embedding_figure(coords, labels, names, legend=legend)
    texts = _legend_texts(fig.axes[0])
    assert texts == (names if expect else None)


def test_forced_legend_for_many_classes_uses_columns():
    labels = np.arange(60).repeat(2)
    coords = np.random.default_rng(0).normal(size=(len(labels), 2))
    names = [f'n{i}' for i in range(60)]
    fig = build_embedding_figure(coords, labels, names, legend=True)
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == names
    assert legend._ncols >= 2


def test_point_size_adapts_to_n_and_scatter_is_rasterized():
    def size(n, point_size=None):
        coords = np.random.default_rng(0).normal(size=(n, 2))
        fig = build_embedding_figure(coords, np.zeros(n, int), ['a'],
                                     point_size=point_size)
        scatter = fig.axes[0].collections[0]
        assert scatter.get_rasterized()
        return scatter.get_sizes()[0]

    assert size(50) > 4 * size(20_000)
    assert size(50, point_size=7.0) == 7.0


@pytest.mark.parametrize('dim', [2, 3])
def test_plot_embedding_writes_valid_png(tmp_path, dim):
    coords, labels = _subset_data(dim=dim)
    out = tmp_path / f'emb{dim}d.png'
    returned = plot_embedding(coords, labels, NAMES, out, title='t')
    assert returned == str(out)
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(out)
    assert image.ndim == 3 and min(image.shape[:2]) > 500
    # Not a blank canvas: the scatter and legend put colour on it.
    assert image[..., :3].std() > 0.01
    assert os.listdir(tmp_path) == [out.name]  # no temp file left behind
    assert plt.get_fignums() == []


def test_plot_embedding_failure_keeps_old_file(tmp_path, monkeypatch):
    out = tmp_path / 'emb.png'
    out.write_bytes(b'previous')

    def broken_savefig(self, fname, **kwargs):
        fname.write(PNG_SIGNATURE + b'half')
        raise RuntimeError('disk full')

    monkeypatch.setattr(Figure, 'savefig', broken_savefig)
    coords, labels = _subset_data()
    with pytest.raises(RuntimeError, match='disk full'):
        plot_embedding(coords, labels, NAMES, out)
    assert out.read_bytes() == b'previous'
    assert os.listdir(tmp_path) == ['emb.png']


def test_show_displays_then_closes(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(plt, 'show',
                        lambda *a, **k: shown.append(list(plt.get_fignums())))
    coords, labels = _subset_data()
    out = plot_embedding(coords, labels, NAMES, tmp_path / 'e.png', show=True)
    assert len(shown) == 1 and len(shown[0]) == 1
    assert open(out, 'rb').read(8) == PNG_SIGNATURE
    assert plt.get_fignums() == []


def test_100k_points_render_quickly(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 100, 100_000)
    coords = rng.normal(size=(100_000, 2)) + labels[:, None] % 10
    start = time.perf_counter()
    plot_embedding(coords, labels, [str(i) for i in range(100)],
                   tmp_path / 'big.png', legend=True)
    # ~1 s here; one artist per point or unrasterized output takes minutes.
    assert time.perf_counter() - start < 20
    assert plt.get_fignums() == []


@pytest.mark.parametrize('coords, labels, out, match', [
    (np.zeros((3, 2)), [0, 1, 12], 'a.png', 'label 12 has no entry'),
    (np.zeros((3, 4)), [0, 1, 2], 'a.png', r'shape \(N, 2\) or \(N, 3\)'),
    (np.zeros((3, 2)), [0, 1], 'a.png', 'labels must have shape'),
    (np.zeros((3, 2)), [0, -1, 2], 'a.png', '>= 0'),
    (np.zeros((3, 2)), [0.0, 1.0, 2.0], 'a.png', 'integer class ids'),
    (np.array([[0, 0], [np.nan, 1]]), [0, 1], 'a.png', 'NaN'),
    (np.zeros((3, 2)), [0, 1, 2], 'a.jpg', 'must end in .png'),
])
def test_bad_input_raises(tmp_path, coords, labels, out, match):
    with pytest.raises(ValueError, match=match):
        plot_embedding(coords, labels, NAMES, tmp_path / out)
    assert os.listdir(tmp_path) == []
    assert plt.get_fignums() == []


def test_draw_order_mixes_classes():
    # Class-sorted input drawn in order would leave the last class on top
    # of all the others wherever they overlap.
    labels = np.repeat([0, 1, 2], 50)
    coords = np.column_stack([labels, np.zeros(150)]).astype(float)
    fig = build_embedding_figure(coords, labels, ['a', 'b', 'c'])
    drawn = np.rint(fig.axes[0].collections[0].get_offsets()[:, 0] * 2)
    assert np.any(np.diff(drawn) < 0)
    assert sorted(drawn) == sorted(labels)
