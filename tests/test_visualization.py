import os

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

from tsneviz.visualization import (
    build_embedding_figure,
    class_palette,
    plot_embedding,
)

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


def test_100k_points_are_one_rasterized_artist(tmp_path):
    # What keeps 100k points fast: one scatter collection, drawn as one
    # bitmap. One artist per point or unrasterized output takes minutes;
    # checked by structure, not by a clock on a shared machine.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 100, 100_000)
    coords = rng.normal(size=(100_000, 2)) + labels[:, None] % 10
    names = [str(i) for i in range(100)]
    fig = build_embedding_figure(coords, labels, names, legend=True)
    ax = fig.axes[0]
    assert len(ax.collections) == 1 and not ax.lines and not ax.patches
    points = ax.collections[0]
    assert points.get_offsets().shape == (100_000, 2)
    assert points.get_rasterized()
    # the legend has one entry per class, not per point
    assert len(ax.get_legend().legend_handles) == 100
    out = plot_embedding(coords, labels, names, tmp_path / 'big.png',
                         legend=True)
    assert open(out, 'rb').read(8) == PNG_SIGNATURE
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


# ------------------------------------------------------------------ views

from tsneviz import rundir  # noqa: E402
from tsneviz.errors import UserError  # noqa: E402
from tsneviz.visualization import (  # noqa: E402
    BACKGROUND,
    HIGHLIGHT,
    VIEWS,
    plot_view,
    render_views,
    view_style,
)


def _pred_table(n=60, seed=0):
    """Three classes; samples 5, 17 and 42 are misclassified, high loss."""
    rng = np.random.default_rng(seed)
    gt = np.arange(n) % 3
    pred = gt.copy()
    wrong = np.array([5, 17, 42])
    pred[wrong] = (gt[wrong] + 1) % 3
    loss = rng.uniform(1e-4, 0.05, n)
    loss[wrong] = [0.9, 3.0, 1.5]
    cluster = gt.copy()
    cluster[[0, 1]] = -1
    return dict(gt_label=gt.astype(float),
                gt_class=np.array(['cat', 'dog', 'bird'], dtype=object)[gt],
                pred_label=pred.astype(float),
                pred_class=np.array(['cat', 'dog', 'bird'],
                                    dtype=object)[pred],
                loss=loss, cluster=cluster.astype(float)), wrong


def test_errors_view_highlights_exactly_the_misclassified():
    table, wrong = _pred_table()
    style = view_style(table, 'errors', point_size=10.0)
    assert np.flatnonzero(style.highlighted).tolist() == wrong.tolist()
    red = np.all(style.colors == HIGHLIGHT, axis=1)
    grey = np.all(style.colors == BACKGROUND, axis=1)
    assert np.flatnonzero(red).tolist() == wrong.tolist()
    assert grey.sum() == len(red) - 3
    # misclassified are bigger than every correct one and drawn on top,
    # the costliest last
    assert style.sizes[wrong].min() > style.sizes[~red].max()
    assert style.order[-3:].tolist() == [5, 42, 17]
    assert sorted(style.order.tolist()) == list(range(60))
    assert [name for name, _ in style.legend] == ['correct (57)',
                                                  'misclassified (3)']


def test_size_by_loss_follows_the_loss():
    table, wrong = _pred_table()
    style = view_style(table, 'errors', size_by_loss=True, point_size=10.0)
    # 0.9 < 1.5 < 3.0: sizes in the same order
    assert style.sizes[5] < style.sizes[42] < style.sizes[17]
    assert style.sizes[wrong].min() > np.delete(style.sizes, wrong).max()
    label = view_style(table, 'label', size_by_loss=True, point_size=10.0)
    assert np.argmax(label.sizes) == 17
    assert np.corrcoef(label.sizes, table['loss'])[0, 1] > 0.99


def test_label_and_prediction_views_share_class_colours():
    table, wrong = _pred_table()
    label = view_style(table, 'label')
    pred = view_style(table, 'prediction')
    right = np.setdiff1d(np.arange(60), wrong)
    np.testing.assert_array_equal(label.colors[right], pred.colors[right])
    assert not np.all(label.colors[wrong] == pred.colors[wrong], axis=1).any()
    assert [n for n, _ in label.legend] == ['cat', 'dog', 'bird']
    np.testing.assert_allclose(np.unique(label.colors, axis=0),
                               np.unique(np.array(class_palette(3)), axis=0))


def test_cluster_view_greys_out_noise():
    table, _ = _pred_table()
    style = view_style(table, 'cluster', point_size=10.0)
    assert np.all(style.colors[[0, 1]] == BACKGROUND)
    assert not np.all(style.colors[2:] == BACKGROUND, axis=1).any()
    assert style.sizes[0] < style.sizes[2]
    assert set(style.order[:2].tolist()) == {0, 1}  # noise drawn first
    assert [n for n, _ in style.legend] == ['0', '1', '2', 'noise (2)']


def test_loss_view_is_log_scaled_with_the_worst_on_top():
    table, _ = _pred_table()
    style = view_style(table, 'loss')
    assert type(style.norm).__name__ == 'LogNorm'
    assert style.order[-1] == 17 and style.order[0] == np.argmin(
        table['loss'])
    # the extremes take the ends of the colormap; in between, higher loss
    # is darker (log scale spreads the small losses over many colours)
    cmap = colormaps['viridis_r']
    np.testing.assert_allclose(style.colors[17], cmap(1.0))
    np.testing.assert_allclose(style.colors[np.argmin(table['loss'])],
                               cmap(0.0))
    lum = style.colors[:, :3] @ [0.299, 0.587, 0.114]
    rank = np.argsort(np.argsort(table['loss']))
    assert np.corrcoef(rank, np.argsort(np.argsort(lum)))[0, 1] < -0.95
    assert len(np.unique(style.colors, axis=0)) > 30
    fig = build_view_figure_for('loss', table)
    assert len(fig.axes) == 2 and 'loss' in fig.axes[1].get_ylabel()


def build_view_figure_for(view, table, dim=2):
    from tsneviz.visualization import build_view_figure
    coords = np.random.default_rng(0).normal(size=(len(table['gt_label']),
                                                   dim))
    return build_view_figure(coords, table, view, title=view)


def test_views_need_predictions():
    table, _ = _pred_table()
    for name in ('pred_label', 'pred_class', 'loss'):
        del table[name]
    for view in ('prediction', 'errors', 'loss'):
        with pytest.raises(UserError, match='no predictions'):
            view_style(table, view)
    with pytest.raises(UserError, match='size by loss'):
        view_style(table, 'label', size_by_loss=True)
    with pytest.raises(ValueError, match='unknown view'):
        view_style(table, 'confidence')
    del table['cluster']
    with pytest.raises(UserError, match='tools/cluster.py'):
        view_style(table, 'cluster')


@pytest.mark.parametrize('view', VIEWS)
def test_plot_view_writes_valid_png(tmp_path, view):
    table, _ = _pred_table()
    coords = np.random.default_rng(0).normal(size=(60, 2))
    out = plot_view(coords, table, view, tmp_path / f'{view}.png',
                    title=view, size_by_loss=view == 'errors')
    assert open(out, 'rb').read(8) == PNG_SIGNATURE
    assert imread(out)[..., :3].std() > 0.01
    assert os.listdir(tmp_path) == [f'{view}.png']
    assert plt.get_fignums() == []


def test_plot_view_3d_and_bad_input(tmp_path):
    table, _ = _pred_table()
    fig = build_view_figure_for('errors', table, dim=3)
    assert isinstance(fig.axes[0], Axes3D)
    with pytest.raises(ValueError, match='rows for'):
        plot_view(np.zeros((5, 2)), table, 'label', tmp_path / 'x.png')
    with pytest.raises(ValueError, match='must end in .png'):
        plot_view(np.zeros((60, 2)), table, 'label', tmp_path / 'x.jpg')


def _tiny_run(path, table):
    """A minimal complete run directory around ``table``."""
    os.makedirs(path)
    n = len(table['gt_label'])
    coords = np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)
    rundir.write_array(os.path.join(path, 'tsne_feat_3.npy'), coords)
    rundir.write_table(os.path.join(path, 'samples.csv'), table)
    rundir.write_json(os.path.join(path, 'run.json'), dict(
        n_samples=n, classes=['cat', 'dog', 'bird'], outputs=['samples.csv'],
        extraction=dict(keys=['feat_3'])))
    return str(path)


def test_render_views_names_files_and_lists_them(tmp_path):
    table, _ = _pred_table()
    run_dir = _tiny_run(tmp_path / 'run', table)
    written = render_views(run_dir, views=('label', 'errors', 'loss'))
    assert [os.path.basename(p) for p in written] == [
        'feat_3_label.png', 'feat_3_errors.png', 'feat_3_loss.png']
    manifest = rundir.read_manifest(run_dir)
    assert manifest['outputs'] == ['samples.csv', 'feat_3_label.png',
                                   'feat_3_errors.png', 'feat_3_loss.png']
    with pytest.raises(UserError, match="no feature 'feat_4'"):
        render_views(run_dir, key='feat_4')
    with pytest.raises(UserError, match='unknown view'):
        render_views(run_dir, views=('confidence',))


def test_render_views_without_predictions_says_so(tmp_path):
    table, _ = _pred_table()
    for name in ('pred_label', 'pred_class', 'loss'):
        del table[name]
    run_dir = _tiny_run(tmp_path / 'run', table)
    assert [os.path.basename(p) for p in render_views(run_dir)] == \
        ['feat_3_label.png']
    with pytest.raises(UserError, match='no predictions'):
        render_views(run_dir, views=('label', 'errors'))
    assert not os.path.exists(os.path.join(run_dir, 'feat_3_errors.png'))
