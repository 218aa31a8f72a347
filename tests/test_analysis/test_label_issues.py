"""Suspected label errors on digits with 5% of their labels flipped.

The test writes a copy of the digits whose ``val`` split has 5% of its
images moved into a wrong class folder (so the dataset's label is wrong,
and the test knows which), runs the demo model on it (trained on
``train``: held out) and requires precision and recall of ``label_issue``
of at least 0.8, with the head (cleanlab) and with the feature-space vote.
"""
import csv
import importlib.util
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from tests.conftest import REPO, make_demo_run, make_features_run
from tsneviz.analysis.label_issues import (
    find_label_issues,
    knn_vote,
    suspects,
    write_review,
)
from tsneviz.errors import UserError
from tsneviz.rundir import Run, neighbors_file

FLIP_RATE = 0.05
MIN_PRECISION = MIN_RECALL = 0.8


@pytest.fixture(scope='module')
def noisy_root(tmp_path_factory, digits_root):
    """A copy of the digits, 5% of ``val`` in a wrong class folder.

    Returns the root and the file names (unique: the image's index in
    scikit-learn's digits) of the flipped images.
    """
    root = str(tmp_path_factory.mktemp('noisy') / 'digits')
    shutil.copytree(digits_root, root)
    val = osp.join(root, 'val')
    files = sorted((c, n) for c in os.listdir(val)
                   for n in os.listdir(osp.join(val, c)))
    rng = np.random.default_rng(0)
    picked = rng.choice(len(files), int(round(FLIP_RATE * len(files))),
                        replace=False)
    flipped = set()
    for i in picked:
        cls, name = files[i]
        wrong = str((int(cls) + int(rng.integers(1, 10))) % 10)
        os.rename(osp.join(val, cls, name), osp.join(val, wrong, name))
        flipped.add(name)
    return root, flipped


@pytest.fixture(scope='module')
def noisy_run(tmp_path_factory, digits_options, noisy_root):
    """The demo model on every noisy ``val`` image, with the default
    label_issues step (cleanlab: the head matches the digits' classes)."""
    root, _ = noisy_root
    options = dict(digits_options)
    options['test_dataloader.dataset.data_root'] = root
    return make_demo_run(tmp_path_factory.mktemp('label_issues') / 'work',
                         options, max_num_samples=1000,
                         analysis=('neighbors', 'label_issues'))


def _scores(run_dir, flipped):
    run = Run(run_dir)
    truth = np.array([osp.basename(p) in flipped
                      for p in run.table['img_path']])
    found = run.table['label_issue'] == 1
    hits = int((truth & found).sum())
    return hits / max(int(found.sum()), 1), hits / int(truth.sum())


def test_the_head_finds_the_flipped_labels(noisy_run, noisy_root):
    run = Run(noisy_run)
    assert len(run) == 540
    section = run.manifest['label_issues']
    assert section['method'] == 'cleanlab' and section['k'] is None
    assert run.analysis['label_issues']['status'] == 'ok'
    quality = run.table['label_quality']
    assert ((quality >= 0) & (quality <= 1)).all()
    assert section['n_issues'] == int((run.table['label_issue'] == 1).sum())
    precision, recall = _scores(noisy_run, noisy_root[1])
    assert precision >= MIN_PRECISION and recall >= MIN_RECALL, \
        (precision, recall)
    # the one line that says the head is used, and why held-out matters
    log = open(run.log_path, encoding='utf-8').read()
    assert 'label_issues: cleanlab' in log and 'held-out' in log


def test_the_feature_vote_finds_them_too(noisy_run, noisy_root, tmp_path,
                                         capsys):
    spec = importlib.util.spec_from_file_location(
        'label_issues_tool', osp.join(REPO, 'tools', 'label_issues.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'review.txt')
    tool.main([noisy_run, '--method', 'knn', '--out', out])
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2:] == [str(tmp_path / 'review.csv'), out]

    run = Run(noisy_run)
    assert run.manifest['label_issues']['method'] == 'knn_vote'
    assert run.manifest['label_issues']['k'] == 10
    precision, recall = _scores(noisy_run, noisy_root[1])
    assert precision >= MIN_PRECISION and recall >= MIN_RECALL, \
        (precision, recall)

    # the CSV: every suspect, lowest quality first
    with open(tmp_path / 'review.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == run.manifest['label_issues']['n_issues']
    assert {'index', 'img_path', 'gt_class', 'pred_class',
            'label_quality'} <= set(rows[0])
    qualities = [float(r['label_quality']) for r in rows]
    assert qualities == sorted(qualities)
    # the annotation file: paths relative to data_prefix, given labels
    lines = open(out).read().splitlines()
    assert len(lines) == len(rows)
    prefix = run.manifest['data_prefix']
    for line, row in zip(lines, rows):
        rel, label = line.rsplit(' ', 1)
        assert not osp.isabs(rel)
        assert osp.samefile(osp.join(prefix, rel), row['img_path'])
        assert rel.split('/')[0] == row['gt_class'] == label


def test_knn_vote_is_the_neighbourhood_plurality():
    labels = np.array([0, 0, 0, 1, 1, 2])
    indices = np.array([[1, 3, 5], [0, 2, 5], [0, 1, 4], [0, 1, 2],
                        [3, 0, 1], [3, 4, 0]])
    quality, issue, vote = knn_vote(labels, indices)
    np.testing.assert_allclose(quality, [1 / 3, 2 / 3, 2 / 3, 0, 1 / 3, 0])
    # 0: a three-way tie that includes its own label: no issue
    assert issue.tolist() == [False, False, False, True, True, True]
    assert vote.tolist() == [0, 0, 0, 0, 0, 1]


def test_a_run_without_a_head_uses_the_vote(tmp_path, digits_root):
    run_dir = make_features_run(tmp_path / 'work', digits_root,
                                per_class=10)
    with pytest.raises(UserError, match='no classification head.*--method '
                       'knn'):
        find_label_issues(run_dir, method='cleanlab')
    with pytest.raises(UserError, match="unknown method 'vote'; choose one "
                       'of auto, cleanlab, knn'):
        find_label_issues(run_dir, method='vote')
    with pytest.raises(UserError, match='no label_issue column'):
        suspects(run_dir)
    # the run's shared graph serves the vote; without it, it is computed
    assert Run(run_dir).neighbors()['indices'].shape[1] >= 5
    os.remove(osp.join(run_dir, neighbors_file('feat_0')))
    section = find_label_issues(run_dir, k=5)
    assert section['method'] == 'knn_vote' and section['k'] == 5
    assert Run(run_dir).neighbors()['indices'].shape == (100, 5)
    with pytest.raises(UserError, match='is a folder'):
        write_review(run_dir, str(tmp_path))
