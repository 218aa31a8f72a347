"""tsneviz.rundir: atomic files, incomplete runs, the feature cache."""
import json
import os
import os.path as osp

import numpy as np
import pytest

from tsneviz import rundir
from tsneviz.errors import UserError


def test_new_run_dir_never_reuses_a_name(tmp_path):
    a = rundir.new_run_dir(str(tmp_path), '20260101_000000')
    b = rundir.new_run_dir(str(tmp_path), '20260101_000000')
    assert a != b and osp.isdir(a) and osp.isdir(b)


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    path = str(tmp_path / 'x.json')
    rundir.write_json(path, {'ok': 1})
    with pytest.raises(TypeError):
        rundir._atomic(path, lambda f: f.write('text, not bytes'))
    assert json.load(open(path)) == {'ok': 1}
    assert os.listdir(tmp_path) == ['x.json']


def test_table_round_trip_with_nan(tmp_path):
    path = str(tmp_path / 't.csv')
    rundir.write_table(path, {'a': np.array([1, 2]),
                              'b': np.array([0.5, np.nan]),
                              'c': ['x', 'y,z']})
    assert rundir.read_table(path) == {'a': ['1', '2'], 'b': ['0.5', ''],
                                       'c': ['x', 'y,z']}


def make_run(work_dir, name, key, complete=True, with_features=True):
    run_dir = osp.join(work_dir, name)
    os.makedirs(run_dir)
    if with_features:
        rundir.write_array(osp.join(run_dir, 'feat_3.npy'), np.zeros((2, 2)))
    if complete:
        rundir.write_json(osp.join(run_dir, 'run.json'), {
            'n_samples': 2,
            'extraction': {'feature_key': key, 'keys': ['feat_3']}})
    return run_dir


def test_cache_only_reuses_complete_matching_runs(tmp_path):
    work = str(tmp_path)
    make_run(work, 'tsne_1', 'k', complete=False)
    make_run(work, 'tsne_2', 'other')
    make_run(work, 'tsne_3', 'k', with_features=False)
    assert rundir.find_cached_run(work, 'k') is None
    good = make_run(work, 'tsne_4', 'k')
    assert rundir.find_cached_run(work, 'k') == good


def test_read_manifest_refuses_incomplete_runs(tmp_path):
    with pytest.raises(UserError, match='not found'):
        rundir.read_manifest(str(tmp_path / 'nope'))
    with pytest.raises(UserError, match='no run.json'):
        rundir.read_manifest(str(tmp_path))


def test_run_reads_back_a_real_run(tmp_path, digits_options):
    from tests.conftest import DEMO_CHECKPOINT, DEMO_CONFIG
    from tsneviz.apis import run_vis_tsne
    run_dir = run_vis_tsne(DEMO_CONFIG, DEMO_CHECKPOINT,
                           analysis=(), work_dir=str(tmp_path), max_num_samples=4,
                           cfg_options=dict(digits_options),
                           tsne=dict(perplexity=5.0, n_iter=250),
                           show_progress=False)
    run = rundir.Run(run_dir)
    assert len(run) == 40 and run.keys == ['feat_3']
    assert run.features().shape == (40, 128)
    assert run.coords().shape == (40, 2)
    assert run.labels.tolist() == sorted(run.labels.tolist())
    assert run.table['loss'].dtype == float and run.has_predictions
    assert run.classes == [str(i) for i in range(10)]
    # class names that look like numbers stay text
    assert run.table['gt_class'][0] == '0' and run.table['index'][0] >= 0
    with pytest.raises(UserError, match='index 40 is out of range'):
        run.check_index(40)
    with pytest.raises(UserError, match="no feature 'feat_9'"):
        run.features('feat_9')


def test_add_columns_and_update_manifest(tmp_path):
    run_dir = make_run(str(tmp_path), 'tsne_1', 'k')
    rundir.write_table(osp.join(run_dir, 'samples.csv'), {'a': [1, 2]})
    rundir.add_columns(run_dir, {'cluster': [0, 1]})
    assert rundir.read_table(osp.join(run_dir, 'samples.csv')) == \
        {'a': ['1', '2'], 'cluster': ['0', '1']}
    with pytest.raises(ValueError, match='3 values for 2 samples'):
        rundir.add_columns(run_dir, {'bad': [1, 2, 3]})
    m = rundir.update_manifest(run_dir, {'clusters': {'n': 2}},
                               ['clusters.csv'])
    assert m['clusters'] == {'n': 2} and m['outputs'] == ['clusters.csv']
    assert rundir.read_manifest(run_dir)['extraction']['feature_key'] == 'k'
