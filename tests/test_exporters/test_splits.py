"""Train/val splits of a real run with real duplicated images."""
import csv
import glob
import json
import os.path as osp
import shutil
import subprocess
import sys
from collections import Counter

import pytest

from tests.conftest import REPO, make_features_run
from tsneviz.errors import UserError
from tsneviz.exporters.splits import make_splits
from tsneviz.rundir import Run, add_columns

TOOL = osp.join(REPO, 'tools', 'make_splits.py')
N_CLUSTERS = 7


def copied_pairs(root):
    """Copy the first two images of each class: 20 exact duplicates.

    ``<n>_dup.png`` sorts right after ``<n>.png``, so a 'first' sample of
    each class takes both.
    """
    pairs = []
    for folder in sorted(glob.glob(osp.join(root, 'val', '*'))):
        files = sorted(glob.glob(osp.join(folder, '*.png')))[:2]
        for src in files:
            dst = src[:-4] + '_dup.png'
            shutil.copy(src, dst)
            pairs.append((src, dst))
    return pairs


@pytest.fixture(scope='module')
def dup_run(tmp_path_factory, digits_root):
    """A run of the first 30 images per class, the copies among them.

    Splits need images, features and clusters, not a model: the features
    are the images' own pixels (``make_features_run``), so each copy has
    exactly the features of its original.
    """
    from sklearn.cluster import KMeans
    base = tmp_path_factory.mktemp('splits')
    root = str(base / 'digits')
    shutil.copytree(digits_root, root)
    pairs = copied_pairs(root)
    run_dir = make_features_run(base / 'work', root, per_class=30,
                                tsne=dict(perplexity=10.0, n_iter=400))
    feats = Run(run_dir).features()
    clusters = KMeans(N_CLUSTERS, n_init=4, random_state=0).fit_predict(
        feats)
    add_columns(run_dir, {'cluster': clusters})
    return run_dir, pairs


def read_ann(path):
    with open(path) as f:
        return [line.rstrip('\n').rsplit(' ', 1) for line in f]


def test_duplicates_never_straddle_and_are_reported(dup_run):
    run_dir, pairs = dup_run
    result = make_splits(run_dir, 0.3, by='cluster')
    run = Run(run_dir)
    prefix = run.manifest['data_prefix']
    # all 20 copies are in the run and found, and nothing else is
    in_run = set(run.image_paths)
    assert all(a in in_run and b in in_run for a, b in pairs)
    with open(result['duplicates'], newline='') as f:
        rows = list(csv.DictReader(f))
    found = {frozenset((r['img_path_a'], r['img_path_b'])) for r in rows}
    assert found == {frozenset(p) for p in pairs}
    assert result['n_duplicate_pairs'] == 20
    assert result['n_duplicate_groups'] == 20
    assert all(float(r['distance']) < 1e-4 for r in rows)
    train = {osp.join(prefix, p) for p, _ in read_ann(result['train'])}
    val = {osp.join(prefix, p) for p, _ in read_ann(result['val'])}
    assert not train & val and train | val == in_run
    for a, b in pairs:
        assert (a in val) == (b in val), (a, b)
    # some pairs went to val, whole
    assert any(a in val for a, _ in pairs)


def test_every_cluster_in_val_in_proportion(dup_run):
    run_dir, _ = dup_run
    ratio = 0.25
    result = make_splits(run_dir, ratio, by='cluster', seed=3)
    run = Run(run_dir)
    prefix = run.manifest['data_prefix']
    val = {osp.join(prefix, p) for p, _ in read_ann(result['val'])}
    cluster_of = dict(zip(run.image_paths,
                          run.table['cluster'].astype(int)))
    sizes = Counter(cluster_of.values())
    in_val = Counter(cluster_of[p] for p in val)
    assert set(in_val) == set(sizes) and len(sizes) == N_CLUSTERS
    for c, n in sizes.items():
        # duplicate pairs move whole: one pair can cost one more
        assert abs(in_val[c] - ratio * n) <= 2, (c, n, in_val[c])
        assert result['strata'][str(c)]['val'] == in_val[c]
    assert abs(result['n_val'] - ratio * len(run)) <= 2
    assert result['n_val'] + result['n_train'] == len(run) == 300


def test_class_split_without_duplicates_is_exact(dup_run):
    run_dir, _ = dup_run
    # threshold 0 groups only features at distance exactly 0, so the
    # class counts are those of plain stratified rounding
    result = make_splits(run_dir, 0.2, by='class', dup_threshold=0.0,
                         out_dir=osp.join(run_dir, 'splits_class'))
    run = Run(run_dir)
    labels = dict(zip(run.image_paths, run.labels))
    prefix = run.manifest['data_prefix']
    val = read_ann(result['val'])
    per_class = Counter(int(y) for _, y in val)
    for c in range(10):
        assert abs(per_class[c] - 0.2 * 30) <= 1
    for path, y in val:
        assert labels[osp.join(prefix, path)] == int(y)
    assert result['n_val'] == 60


def test_annotations_load_with_custom_dataset(dup_run):
    from mmpretrain.datasets import CustomDataset
    run_dir, _ = dup_run
    result = make_splits(run_dir, 0.3, by='class', seed=1)
    run = Run(run_dir)
    prefix = run.manifest['data_prefix']
    labels = dict(zip(run.image_paths, run.labels))
    for name in ('train', 'val'):
        ds = CustomDataset(ann_file=result[name], data_prefix=prefix,
                           pipeline=[])
        assert len(ds) == result[f'n_{name}']
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            assert osp.isfile(info['img_path'])
            assert labels[info['img_path']] == info['gt_label']


def test_same_seed_same_split_and_manifest(dup_run):
    run_dir, _ = dup_run
    a = make_splits(run_dir, 0.3, by='cluster', seed=5,
                    out_dir=osp.join(run_dir, 'a'))
    b = make_splits(run_dir, 0.3, by='cluster', seed=5,
                    out_dir=osp.join(run_dir, 'b'))
    c = make_splits(run_dir, 0.3, by='cluster', seed=6,
                    out_dir=osp.join(run_dir, 'c'))
    assert open(a['val']).read() == open(b['val']).read()
    assert open(a['val']).read() != open(c['val']).read()
    manifest = json.load(open(osp.join(run_dir, 'run.json')))
    assert manifest['splits']['seed'] == 6
    assert 'c/val.txt' in manifest['outputs']


@pytest.mark.parametrize('ratio', [0, 1, 1.5, -0.1])
def test_val_ratio_outside_unit_interval(dup_run, ratio):
    with pytest.raises(UserError, match='val ratio must be in') as err:
        make_splits(dup_run[0], ratio, by='class')
    assert '\n' not in str(err.value)


def test_cluster_split_without_clusters(tmp_path, dup_run):
    run_dir, _ = dup_run
    bare = str(tmp_path / 'tsne_bare')
    shutil.copytree(run_dir, bare)
    table = Run(bare).table
    with open(osp.join(bare, 'samples.csv'), newline='') as f:
        rows = list(csv.reader(f))
    drop = rows[0].index('cluster')
    with open(osp.join(bare, 'samples.csv'), 'w', newline='') as f:
        csv.writer(f).writerows([r[:drop] + r[drop + 1:] for r in rows])
    assert 'cluster' in table and 'cluster' not in Run(bare).table
    with pytest.raises(UserError, match='run tools/cluster.py'):
        make_splits(bare, 0.2, by='cluster')
    with pytest.raises(UserError, match='has no run.json'):
        make_splits(str(tmp_path), 0.2, by='class')


def test_cli_splits_and_fails_in_one_line(dup_run, tmp_path):
    run_dir, _ = dup_run
    out = str(tmp_path / 'cli')
    ok = subprocess.run([sys.executable, TOOL, run_dir, '--val-ratio', '0.2',
                         '--by', 'cluster', '--out', out],
                        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert '20 near-duplicate pairs' in ok.stdout
    assert osp.isfile(osp.join(out, 'train.txt'))
    assert abs(len(read_ann(osp.join(out, 'val.txt'))) - 60) <= 2
    bad = subprocess.run([sys.executable, TOOL, run_dir, '--val-ratio', '1'],
                         capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith('error: val ratio must be in (0, 1)')
    assert 'Traceback' not in bad.stderr


@pytest.mark.parametrize('threshold', ['auto', 1e-3])
def test_graph_candidates_find_what_the_full_search_finds(threshold):
    import numpy as np
    from sklearn.neighbors import NearestNeighbors

    from tsneviz.exporters.splits import find_duplicates
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(600, 32)).astype(np.float32)
    # copies (scaled, so equal in cosine; one with a little noise) and a
    # group of four, larger than the 2 candidates each row gets below
    feats[10] = 3 * feats[5]
    feats[20] = feats[7] + rng.normal(scale=1e-3, size=32)
    feats[[31, 32, 33]] = feats[30]
    full = find_duplicates(feats, threshold)
    graph = NearestNeighbors(n_neighbors=3, metric='cosine').fit(feats)
    candidates = graph.kneighbors(feats, return_distance=False)
    via_graph = find_duplicates(feats, threshold, candidates=candidates)
    assert len(full[0]) == 8  # 1 + 1 + the 6 pairs of the four
    assert np.array_equal(full[0], via_graph[0])
    assert np.allclose(full[1], via_graph[1], atol=1e-5)
    assert full[2] == pytest.approx(via_graph[2], rel=1e-4)


def test_splits_use_the_runs_graph(dup_run, monkeypatch):
    from tsneviz.exporters import splits
    assert Run(dup_run[0]).neighbors() is not None

    def refuse(*args, **kwargs):
        raise AssertionError('searched all pairs despite the run\'s graph')

    monkeypatch.setattr(splits, '_pairs_exhaustive', refuse)
    assert make_splits(dup_run[0], 0.3, by='class')['n_duplicate_pairs'] \
        == 20
