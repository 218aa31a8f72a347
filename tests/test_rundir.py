"""tsneviz.rundir: atomic files, incomplete runs, the feature cache."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import REPO
from tsneviz import rundir
from tsneviz.errors import UserError
from tsneviz.server.app import create_app


def test_new_run_dir_never_reuses_a_name(tmp_path):
    a = rundir.new_run_dir(str(tmp_path), '20260101_000000')
    b = rundir.new_run_dir(str(tmp_path), '20260101_000000')
    assert a != b and osp.isdir(a) and osp.isdir(b)


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    path = str(tmp_path / 'x.json')
    rundir.write_json(path, {'ok': 1})
    with pytest.raises(TypeError):
        rundir.atomic_write(path, lambda f: f.write('text, not bytes'))
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
                           analysis=(), work_dir=str(tmp_path),
                           max_num_samples=4,
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


def test_atomic_write_is_the_one_writer(tmp_path):
    path = str(tmp_path / 'page.html')
    assert rundir.write_text(path, 'é') == path
    assert open(path, encoding='utf-8').read() == 'é'
    # a failing writer keeps the old file and leaves no temporary behind

    def half(f):
        f.write(b'half')
        raise RuntimeError('boom')

    with pytest.raises(RuntimeError, match='boom'):
        rundir.atomic_write(path, half)
    assert open(path, encoding='utf-8').read() == 'é'
    assert os.listdir(tmp_path) == ['page.html']
    # mkstemp makes files 0600; the result has the mode open() would give
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask


def test_copy_file_copies_or_links_through_a_temporary(tmp_path):
    src = tmp_path / 'a.png'
    src.write_bytes(b'image')
    copied = rundir.copy_file(str(src), str(tmp_path / 'b.png'))
    linked = rundir.copy_file(str(src), str(tmp_path / 'c.png'), link=True)
    assert open(copied, 'rb').read() == b'image' and not osp.islink(copied)
    assert osp.islink(linked) and os.readlink(linked) == str(src)
    assert sorted(os.listdir(tmp_path)) == ['a.png', 'b.png', 'c.png']


@pytest.mark.parametrize('name, values, kind', [
    ('gt_class', ['0', '1'], 'text'),     # class names that look like ids
    ('img_path', ['17.png', '3'], 'text'),
    ('gt_label', ['0', '1'], 'int'),
    ('cluster', ['1', ''], 'int'),
    ('loss', ['1', '2'], 'float'),        # whole numbers, still a float
    ('feat_3_x', ['1', '2'], 'float'),    # a key's coordinate column
    ('note', ['2', '-3'], 'int'),         # unknown: inferred
    ('note', ['2', '0.5'], 'float'),
    ('note', ['a', '1'], 'text'),
])
def test_samples_schema_kinds(name, values, kind):
    assert rundir.column_kind(name, ['feat_3'], values) == kind


def test_run_table_and_exports_type_by_the_same_schema():
    cols = {'gt_class': ['1', '2'], 'cluster': ['1', ''],
            'gt_label': ['1', '2'], 'note': ['a', '1']}
    loose = {n: rundir.typed_column(n, v) for n, v in cols.items()}
    exact = {n: rundir.typed_column(n, v, exact=True)
             for n, v in cols.items()}
    for name in cols:  # text in one is text in the other
        assert (loose[name].dtype == object) == (exact[name].dtype == object)
    assert loose['gt_label'].dtype == np.float64
    assert exact['gt_label'].dtype == np.int64
    assert np.isnan(exact['cluster'][1]) and exact['cluster'][0] == 1
    assert rundir.nullable_ints(cols) == ['cluster']


def test_samples_csv_writes_int_columns_as_ints(tmp_path):
    run_dir = make_run(str(tmp_path), 'tsne_1', 'k')
    rundir.write_table(osp.join(run_dir, 'samples.csv'),
                       {'gt_label': [0, 1]})
    # cluster ids that went through a float array (NaN beside them)
    rundir.add_columns(run_dir, {'cluster': np.array([2.0, np.nan]),
                                 'loss': np.array([1.0, 0.5])})
    assert rundir.read_table(osp.join(run_dir, 'samples.csv')) == {
        'gt_label': ['0', '1'], 'cluster': ['2', ''],
        'loss': ['1.0', '0.5']}


def test_run_reads_its_optional_files(tmp_path):
    run_dir = make_run(str(tmp_path), 'tsne_1', 'k')
    rundir.write_table(osp.join(run_dir, 'samples.csv'), {'gt_label': [0, 1]})
    run = rundir.Run(run_dir)
    assert run.logits() is None and run.neighbors() is None
    assert run.clusters() is None and run.plot_files() == []
    rundir.write_array(osp.join(run_dir, rundir.LOGITS), np.ones((2, 3)))
    rundir.atomic_write(osp.join(run_dir, rundir.neighbors_file('feat_3')),
                        lambda f: np.savez(f, indices=np.array([[1], [0]]),
                                           distances=np.zeros((2, 1)),
                                           metric=np.array('cosine')))
    rundir.write_table(osp.join(run_dir, rundir.CLUSTERS),
                       {c: [''] for c in rundir.CLUSTER_COLUMNS})
    for name in ('feat_3.png', 'feat_3_cluster.png', 'other.png'):
        rundir.write_bytes(osp.join(run_dir, name), b'png')
    run = rundir.Run(run_dir)
    assert run.logits().shape == (2, 3)
    found = run.neighbors('feat_3')
    assert found['indices'].tolist() == [[1], [0]]
    assert found['metric'] == 'cosine'
    assert list(run.clusters()) == list(rundir.CLUSTER_COLUMNS)
    assert run.plot_files() == ['feat_3.png', 'feat_3_cluster.png']
    assert run.read_bytes('feat_3.png') == b'png'
    # a damaged optional file is refused naming it
    rundir.write_array(osp.join(run_dir, rundir.LOGITS), np.ones((5, 3)))
    with pytest.raises(UserError, match='logits.npy has shape'):
        run.logits()
    rundir.write_bytes(osp.join(run_dir, 'neighbors_feat_3.npz'), b'junk')
    with pytest.raises(UserError, match='neighbors_feat_3.npz'):
        run.neighbors()


# ---- run.json's format version ---------------------------------------------

def _copy_with_manifest(run_dir, root, change):
    """A copy of a run whose run.json ``change(manifest)`` rewrote."""
    copy = str(root / 'cfg' / 'tsne_copy')
    shutil.copytree(run_dir, copy)
    path = osp.join(copy, 'run.json')
    with open(path) as f:
        manifest = json.load(f)
    change(manifest)
    with open(path, 'w') as f:
        json.dump(manifest, f)
    return copy


def test_new_runs_record_the_format_version(features_run):
    with open(osp.join(features_run, 'run.json')) as f:
        assert json.load(f)['format_version'] == rundir.FORMAT_VERSION


def test_a_run_without_a_version_reads_in_the_current_shape(features_run,
                                                             tmp_path):
    params = rundir.Run(features_run).layout_params
    assert params['perplexity'] == 10.0

    def as_first_runs_wrote_it(manifest):
        # before format versions and UMAP/PCA: the t-SNE's own section
        del manifest['format_version'], manifest['layout']
        manifest['tsne'] = dict(manifest.get('tsne') or {}, params=params)

    old = rundir.Run(_copy_with_manifest(features_run, tmp_path,
                                  as_first_runs_wrote_it))
    assert old.manifest['format_version'] == rundir.FORMAT_VERSION
    assert old.method == 'tsne' and old.layout_params == params


def test_a_run_of_a_newer_tsneviz_is_refused_in_one_line(features_run,
                                                        tmp_path):
    newer = _copy_with_manifest(
        features_run, tmp_path,
        lambda m: m.update(format_version=rundir.FORMAT_VERSION + 1))
    with pytest.raises(UserError, match='upgrade tsneviz'):
        rundir.Run(newer)
    tool = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'report.py'), newer],
        capture_output=True, text=True, cwd=str(tmp_path))
    assert tool.returncode == 2, tool.stderr
    errors = [line for line in tool.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and 'upgrade tsneviz' in errors[0], errors
    listed = TestClient(create_app(str(tmp_path)),
                        base_url='http://127.0.0.1').get('/api/runs').json()
    assert listed['runs'] == []
    (broken, ) = listed['broken']
    assert 'upgrade tsneviz' in broken['error']
