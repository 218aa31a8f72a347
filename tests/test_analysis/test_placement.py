"""Placing new samples on a run's map (tsneviz.analysis.placement).

The map is a real run of the demo model on the ``val`` digits; the
``train`` digits, which the map has never seen, are placed onto it through
the same model, and where they land is checked against their labels with
a neighbour vote computed here, from the written CSV and the run's own
coordinates.
"""
import os
import os.path as osp

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from tests.conftest import digits_sample, make_demo_run, make_features_run


@pytest.fixture(scope='module')
def val_run(tmp_path_factory, digits_options):
    return make_demo_run(tmp_path_factory.mktemp('placement') / 'work',
                         digits_options)


def _vote(coords, labels, points, k=10):
    """Majority class of the k nearest map samples, in map coordinates."""
    _, idx = NearestNeighbors(n_neighbors=k).fit(coords).kneighbors(points)
    return np.array([np.bincount(labels[row]).argmax() for row in idx])


def test_train_images_land_among_their_class(val_run, digits_root):
    from tsneviz.apis import place_images
    from tsneviz.rundir import Run, read_table

    run_dir = val_run
    before = Run(run_dir).coords().copy()
    placed = place_images(run_dir, osp.join(digits_root, 'train'),
                          labels='folder')
    run = Run(run_dir)
    assert placed.name == 'train'
    entry = run.manifest['placed']['train']
    assert entry['file'] == 'placed/train.csv'
    assert 'placed/train.csv' in run.manifest['outputs']
    table = read_table(run.file('placed/train.csv'))
    n_train = sum(len(files) for _, _, files in
                  os.walk(osp.join(digits_root, 'train')))
    assert entry['n'] == len(table['img_path']) == n_train > 1000
    # the map did not move
    np.testing.assert_array_equal(run.coords(), before)

    labels = np.array([int(v) for v in table['gt_label']])
    folders = [int(osp.basename(osp.dirname(p))) for p in table['img_path']]
    assert labels.tolist() == folders
    points = np.array([[float(x), float(y)] for x, y in
                       zip(table['feat_3_x'], table['feat_3_y'])])
    share = float((_vote(run.coords(), run.labels, points) ==
                   labels).mean())
    assert share >= 0.95, share
    assert entry['vote_agreement'] == pytest.approx(share, abs=1e-6)

    # the model's predictions, named in its classes
    assert np.mean([p == str(g) for p, g in
                    zip(table['pred_class'], labels)]) > 0.95
    assert all(0 < float(s) <= 1 for s in table['score'])
    # nearest map samples in feature space: positions and their paths
    first = [int(i) for i in table['neighbors'][0].split()]
    assert len(first) == 10
    assert table['neighbor_paths'][0].split('|') == \
        [run.image_paths[i] for i in first]
    distances = [float(d) for d in table['neighbor_distances'][0].split()]
    assert distances == sorted(distances)
    assert run.has('placed/train.png')


def test_own_images_land_on_their_own_positions(val_run):
    from tsneviz.apis import place_images
    from tsneviz.rundir import Run

    run = Run(val_run)
    listed = sorted(os.listdir(run.file('placed'))) \
        if run.has('placed') else []
    placed = place_images(val_run, run.image_paths[:120], write=False)
    coords = run.coords()[:120]
    # each image is its own nearest sample in feature space
    assert (placed.neighbors[:, 0] == np.arange(120)).all()
    assert placed.distances[:, 0].max() < 1e-3
    # and lands where the map has it: far closer than its 10th neighbour
    moved = np.linalg.norm(placed.coords - coords, axis=1)
    tenth = NearestNeighbors(n_neighbors=11).fit(run.coords()).kneighbors(
        coords)[0][:, 10]
    assert np.median(moved) < 0.25 * np.median(tenth), \
        (np.median(moved), np.median(tenth))
    _, idx = NearestNeighbors(n_neighbors=10).fit(run.coords()).kneighbors(
        placed.coords)
    assert np.mean([i in row for i, row in enumerate(idx)]) >= 0.95
    assert placed.name is None
    # write=False writes nothing
    assert (sorted(os.listdir(run.file('placed'))) if run.has('placed')
            else []) == listed


def test_features_on_pca_map_are_exact(tmp_path, digits_root):
    """A PCA map's projection is refitted exactly: the run's own rows
    land on their own coordinates, and the labels file is read."""
    from tsneviz.apis import place_features
    from tsneviz.rundir import Run

    run_dir = make_features_run(tmp_path / 'work', digits_root,
                                method='pca')
    run = Run(run_dir)
    feats = run.features()[:40]
    np.save(tmp_path / 'new.npy', feats)
    (tmp_path / 'labels.txt').write_text(
        '\n'.join(str(int(v)) for v in run.labels[:40]) + '\n')
    placed = place_features(run_dir, str(tmp_path / 'new.npy'),
                            labels=str(tmp_path / 'labels.txt'),
                            name='again')
    np.testing.assert_allclose(placed.coords, run.coords()[:40],
                               atol=1e-3 * np.abs(run.coords()).max())
    assert placed.how.startswith('PCA')
    assert Run(run_dir).manifest['placed']['again']['source'] == 'features'
    assert placed.pred_label is None  # no model, no predictions


def test_features_on_tsne_map(tmp_path, digits_root):
    """New rows of a plain-features t-SNE run land among their class."""
    from tsneviz.apis import place_features
    from tsneviz.rundir import Run

    run_dir = make_features_run(tmp_path / 'work', digits_root,
                                per_class=20)
    run = Run(run_dir)
    # the next 20 images of each class: not on the map
    feats, labels, _ = digits_sample(digits_root, per_class=40)
    new = np.arange(len(labels)) % 40 >= 20
    placed = place_features(run_dir, feats[new],
                            labels=np.asarray(labels)[new], write=False)
    share = float((_vote(run.coords(), run.labels, placed.coords) ==
                   np.asarray(labels)[new]).mean())
    assert share >= 0.85, share  # raw pixels separate digits less well


def test_one_line_errors(tmp_path, val_run, features_run, digits_root):
    from tsneviz.apis import place_features, place_images
    from tsneviz.errors import UserError

    def message(call):
        with pytest.raises(UserError) as err:
            call()
        text = str(err.value)
        assert '\n' not in text
        return text

    assert 'run directory not found' in message(
        lambda: place_images(str(tmp_path / 'nope'), 'x.png'))
    wrong = np.zeros((3, 7), np.float32)
    text = message(lambda: place_features(features_run, wrong))
    assert '7 columns' in text and '64' in text
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert 'no images' in message(lambda: place_images(val_run,
                                                       str(empty)))
    assert 'no images' in message(lambda: place_images(val_run, []))
    folder = osp.join(digits_root, 'val', '1')
    one = osp.join(folder, sorted(os.listdir(folder))[0])
    assert 'plain features' in message(
        lambda: place_images(features_run, one))
    assert 'layer name' in message(
        lambda: place_features(features_run, np.zeros((1, 64)),
                               name='../x'))
    flat = tmp_path / 'flat'
    flat.mkdir()
    from PIL import Image
    Image.new('RGB', (32, 32)).save(flat / 'a.png')
    assert 'cannot tell the label' in message(
        lambda: place_images(val_run, str(flat), labels='folder'))


def test_labels_from_an_annotation_file(tmp_path, val_run, digits_root):
    """``<path> <label>`` lines, relative to the images folder, by class
    name or id; images the file does not list are an error."""
    import shutil

    from tsneviz.apis import place_images
    from tsneviz.errors import UserError

    train = osp.join(digits_root, 'train')
    new = tmp_path / 'new'
    lines = []
    for c in (2, 7):
        name = sorted(os.listdir(osp.join(train, str(c))))[0]
        (new / 'x').mkdir(parents=True, exist_ok=True)
        shutil.copy(osp.join(train, str(c), name), new / 'x' / name)
        lines.append(f'x/{name} {c}')
    listing = tmp_path / 'labels.txt'
    listing.write_text('\n'.join(lines) + '\n')
    placed = place_images(val_run, str(new), labels=str(listing),
                          write=False)
    assert sorted(placed.labels.tolist()) == [2, 7]
    assert (placed.pred_label == placed.labels).all()
    # relative to the train folder, the file labels 2 of its images
    with pytest.raises(UserError, match='no label for'):
        place_images(val_run, train, labels=str(listing), write=False)


def _placement_settings(monkeypatch):
    """The settings openTSNE's placement of new points really runs with
    (the reference embedding's gradient-descent parameters)."""
    import openTSNE

    seen = {}
    original = openTSNE.TSNEEmbedding.prepare_partial

    def recording(self, *args, **kwargs):
        seen.update(self.gradient_descent_params)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(openTSNE.TSNEEmbedding, 'prepare_partial', recording)
    return seen


def test_placement_uses_the_maps_own_opentsne_settings(tmp_path, monkeypatch,
                                                       digits_root):
    """A value the run was fitted with reaches the placement."""
    from tsneviz.apis import place_features
    from tsneviz.rundir import Run

    run_dir = make_features_run(
        tmp_path / 'work', digits_root, per_class=10,
        tsne=dict(perplexity=10.0, n_iter=250, ints_in_interval=3.0,
                  negative_gradient_method='fft'))
    seen = _placement_settings(monkeypatch)
    place_features(run_dir, Run(run_dir).features()[:5], write=False)
    assert seen['ints_in_interval'] == 3.0
    assert seen['negative_gradient_method'] == 'fft'


def test_placement_on_another_backends_map_takes_opentsnes_defaults(
        tmp_path, monkeypatch, digits_root):
    """A scikit-learn map has no FFT grid setting: it is placed with the
    FFT grid openTSNE fits with (2), not openTSNE's library default."""
    from tsneviz.apis import place_features
    from tsneviz.reduction import OpenTSNE
    from tsneviz.rundir import Run

    run_dir = make_features_run(
        tmp_path / 'work', digits_root, per_class=10,
        tsne=dict(backend='sklearn', perplexity=10.0, n_iter=250))
    run = Run(run_dir)
    assert 'ints_in_interval' not in run.layout_params
    seen = _placement_settings(monkeypatch)
    placed = place_features(run_dir, run.features()[:5], write=False)
    assert seen['ints_in_interval'] == \
        OpenTSNE.defaults['ints_in_interval'] == 2.0
    assert placed.how.startswith('openTSNE')


def test_a_umap_map_refuses_new_points_in_one_line(tmp_path, digits_root):
    from tsneviz.apis import place_features
    from tsneviz.errors import UserError
    from tsneviz.rundir import Run

    run_dir = make_features_run(tmp_path / 'work', digits_root,
                                per_class=10, method='umap',
                                tsne=dict(n_neighbors=10, n_epochs=50))
    with pytest.raises(UserError) as err:
        place_features(run_dir, Run(run_dir).features()[:5], write=False)
    text = str(err.value)
    assert '\n' not in text and text.startswith(run_dir)
    assert 'UMAP' in text and '--method tsne' in text
