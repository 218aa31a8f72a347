"""Nearest neighbours of a real run: stored, queried, drawn, via the CLI."""
import json
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, make_demo_run
from tsneviz.analysis.neighbors import (
    compute_neighbors,
    describe_sample,
    load_neighbors,
    query,
    save_neighbor_grid,
)
from tsneviz.errors import UserError
from tsneviz.rundir import Run

TOOL = osp.join(REPO, 'tools', 'neighbors.py')


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory, digits_options):
    return make_demo_run(tmp_path_factory.mktemp('neighbors') / 'work',
                         digits_options)


@pytest.fixture(scope='module')
def stored(run_dir):
    return compute_neighbors(run_dir, k=20, show_progress=False)


def test_stored_neighbours_match_a_brute_force_search(run_dir, stored):
    assert osp.basename(stored) == 'neighbors_feat_3.npz'
    data = load_neighbors(run_dir)
    idx, dist = data['indices'], data['distances']
    assert idx.shape == dist.shape == (300, 20)
    assert idx.dtype == np.int32 and dist.dtype == np.float32
    assert data['metric'] == 'cosine'
    # never the sample itself, nearest first
    assert not (idx == np.arange(300)[:, None]).any()
    assert (np.diff(dist, axis=1) >= -1e-6).all()
    feats = Run(run_dir).features()
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    cosine = 1 - unit @ unit.T
    np.fill_diagonal(cosine, np.inf)
    np.testing.assert_allclose(dist[:, 0], cosine.min(axis=1), atol=1e-5)
    manifest = json.load(open(osp.join(run_dir, 'run.json')))
    assert 'neighbors_feat_3.npz' in manifest['outputs']
    section = manifest['neighbors']['feat_3']
    assert section['k'] == 20 and section['metric'] == 'cosine'


def test_most_neighbours_share_the_class(run_dir, stored):
    run = Run(run_dir)
    idx = load_neighbors(run_dir)['indices']
    same = (run.labels[idx] == run.labels[:, None]).mean()
    assert same > 0.8
    section = json.load(open(osp.join(run_dir, 'run.json')))['neighbors']
    assert section['feat_3']['same_class_rate'] == pytest.approx(same,
                                                                 abs=1e-5)


def test_query_a_sample_uses_stored_or_computes(run_dir, stored):
    run = Run(run_dir)
    found = query(run_dir, index=5, k=9)
    assert len(found) == 9
    assert 5 not in [f['position'] for f in found]
    stored_idx = load_neighbors(run_dir)['indices'][5, :9]
    assert [f['position'] for f in found] == stored_idx.tolist()
    first = found[0]
    assert first['index'] == int(run.table['index'][first['position']])
    assert first['img_path'] == run.image_paths[first['position']]
    assert {'gt_class', 'pred_class', 'distance'} <= set(first)
    # more than stored (20) and another metric: computed, same contract
    wide = query(run_dir, index=5, k=25)
    assert [f['position'] for f in wide[:9]] == stored_idx.tolist()
    euclid = query(run_dir, index=5, k=9, metric='euclidean')
    feats = run.features()
    expected = np.linalg.norm(feats - feats[5], axis=1)
    expected[5] = np.inf
    assert [f['position'] for f in euclid] == \
        np.argsort(expected)[:9].tolist()
    same = np.mean([f['gt_label'] == run.labels[5] for f in found])
    assert same > 0.8


def test_image_of_the_run_finds_itself_first(run_dir, tmp_path):
    run = Run(run_dir)
    position = 123
    # a copy elsewhere: the match is by features, not by path
    image = str(tmp_path / 'query.png')
    shutil.copy(run.image_paths[position], image)
    found = query(run_dir, image=image, k=5)
    assert found[0]['position'] == position
    assert found[0]['distance'] < 1e-4
    assert found[1]['distance'] > found[0]['distance']
    assert found[0]['gt_class'] == run.classes[run.labels[position]]


def test_grid_png_is_written(run_dir, tmp_path):
    from PIL import Image
    out = str(tmp_path / 'grid.png')
    save_neighbor_grid(describe_sample(run_dir, 7), query(run_dir, index=7),
                       out, title='test')
    with Image.open(out) as img:
        assert img.format == 'PNG'
        width, height = img.size
    # 10 tiles: 4 columns x 3 rows
    assert width > 500 and height > 500


def test_grid_warns_about_missing_images(run_dir, tmp_path, capsys):
    out = str(tmp_path / 'grid.png')
    found = query(run_dir, index=7, k=4)
    save_neighbor_grid(describe_sample(run_dir, 7), found, out)
    assert 'warning' not in capsys.readouterr().err
    gone = [dict(item, img_path=str(tmp_path / f'gone_{i}.png'))
            for i, item in enumerate(found[:2])]
    save_neighbor_grid(describe_sample(run_dir, 7), gone + found[2:], out)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('warning: 2 of the 5 images')
    assert str(tmp_path / 'gone_0.png') in err[0]


@pytest.mark.parametrize('kwargs, message', [
    (dict(index=300), 'index 300 is out of range'),
    (dict(index=-1), 'index -1 is out of range'),
    (dict(index=0, k=600), 'k 600 is larger than the 299 other samples'),
    (dict(index=0, k=3, metric='manhattan'), 'unknown metric'),
    (dict(image='/no/such/image.png'), 'image not found'),
    (dict(index=0, image='x.png'), 'exactly one of index or image'),
])
def test_bad_queries_are_user_errors(run_dir, kwargs, message):
    with pytest.raises(UserError, match=message) as err:
        query(run_dir, **kwargs)
    assert '\n' not in str(err.value)


def test_unreadable_image_and_incomplete_run(run_dir, tmp_path):
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not a png')
    with pytest.raises(UserError, match='cannot read image') as err:
        query(run_dir, image=str(broken))
    assert '\n' not in str(err.value)
    incomplete = tmp_path / 'tsne_incomplete'
    incomplete.mkdir()
    with pytest.raises(UserError, match='has no run.json'):
        query(str(incomplete), index=0)
    with pytest.raises(UserError, match='has no run.json'):
        compute_neighbors(str(incomplete))
    with pytest.raises(UserError, match='k 300 is larger'):
        compute_neighbors(run_dir, k=300, show_progress=False)


def test_cli_writes_a_grid_and_fails_in_one_line(run_dir, tmp_path):
    out = str(tmp_path / 'cli_grid.png')
    ok = subprocess.run([sys.executable, TOOL, run_dir, '--index', '3',
                         '--k', '8', '--out', out], capture_output=True,
                        text=True, cwd=REPO, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == out
    assert osp.getsize(out) > 0
    bad = subprocess.run([sys.executable, TOOL, run_dir, '--index', '3',
                          '--k', '600'], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        'error: k 600 is larger than the 299 other samples of the run; '
        'pass a smaller k']
    assert 'Traceback' not in bad.stderr
