"""Every failure is one line, and a run never looks more complete than it is.

Each failure runs the tools as a user does (a subprocess, through
``tsneviz.cli.run``): exit status 2 (3 for a failed analysis step of a
complete run), one ``error:`` line on stderr, no traceback, and no run
directory left that could pass for a finished one. Failures of the machine
(a full disk, a read-only folder) are simulated by patching the one
function that meets them, in the child process, before the tool runs.
"""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import (
    DEMO_CHECKPOINT,
    DEMO_CONFIG,
    REPO,
    mmpretrain_config,
)
from tsneviz import rundir
from tsneviz.errors import UserError

TOOLS = osp.join(REPO, 'tools')

# Runs a tool as __main__ after the patch code given with it.
RUN_TOOL = ('\nimport runpy, sys\nsys.argv = sys.argv[1:]\n'
            "runpy.run_path(sys.argv[0], run_name='__main__')\n")

# rundir writes every file through os.fdopen; these hand it /dev/full (the
# kernel's always-full device: every write fails with ENOSPC) or refuse
# mkdir as a read-only file system does. Only tsneviz.rundir sees them.
PATCH_OS = '''
import errno, os, types
import tsneviz.rundir as rundir
fake = types.ModuleType('os')
fake.__dict__.update(os.__dict__)
rundir.io.os = rundir.manifest.os = fake
'''
FULL_DISK = PATCH_OS + '''
def fdopen(fd, mode='r', *args, **kwargs):
    os.close(fd)
    return open('/dev/full', mode, buffering=0)
fake.fdopen = fdopen
'''
READ_ONLY = PATCH_OS + '''
def mkdir(path, *args, **kwargs):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
fake.mkdir = mkdir
'''
FAILING_CLUSTERS = '''
import tsneviz.analysis
def cluster_run(*args, **kwargs):
    raise RuntimeError('boom in clustering')
tsneviz.analysis.cluster_run = cluster_run
'''


def tool(name, *args, patch=None):
    script = osp.join(TOOLS, name)
    if patch is None:
        command = [sys.executable, script]
    else:
        command = [sys.executable, '-c', patch + RUN_TOOL, script]
    return subprocess.run(command + [str(a) for a in args],
                          capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def assert_one_line_error(proc, needle, code=2):
    assert proc.returncode == code, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines()
              if line.startswith('error:')]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert proc.stderr.rstrip().splitlines()[-1] == errors[0]
    assert needle in errors[0], errors[0]
    return errors[0]


def assert_nothing_half_written(work_dir):
    """No run directory without run.json, no temporary file anywhere."""
    for run_dir in glob.glob(osp.join(str(work_dir), 'tsne_*')):
        assert osp.isfile(osp.join(run_dir, 'run.json')), run_dir
    leftovers = glob.glob(osp.join(str(work_dir), '**', '.tmp_*'),
                          recursive=True)
    assert not leftovers


@pytest.fixture(scope='module')
def matrix(tmp_path_factory):
    """Digits pixels as a feature matrix with labels: 12 of each class."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    keep = np.concatenate([np.flatnonzero(y == c)[:12] for c in range(10)])
    folder = tmp_path_factory.mktemp('matrix')
    np.save(folder / 'feats.npy', X[keep].astype(np.float32))
    (folder / 'labels.txt').write_text(
        ''.join(f'{int(c)}\n' for c in y[keep]))
    return str(folder / 'feats.npy'), str(folder / 'labels.txt')


def features_args(matrix, work_dir, *extra):
    feats, labels = matrix
    return ('vis_tsne.py', '--features', feats, '--labels', labels,
            '--work-dir', work_dir, '--perplexity', '10', '--n-iter', '250',
            *extra)


# 1, 2. Datasets that mmpretrain refuses with an assert or a download ------


def test_imagenet_type_on_a_small_folder_says_what_it_expects(tmp_path,
                                                              digits_root):
    work_dir = tmp_path / 'work'
    proc = tool('vis_tsne.py', DEMO_CONFIG, '--work-dir', work_dir,
                '--cfg-options', f'test_dataloader.dataset.data_root='
                f'{digits_root}', 'test_dataloader.dataset.type=ImageNet')
    line = assert_one_line_error(proc, 'does not fit the ImageNet dataset')
    assert 'The number of subfolders (10)' in line
    assert 'its 1000 classes' in line
    assert 'test_dataloader.dataset.type=CustomDataset' in line
    assert not work_dir.exists() or not os.listdir(work_dir)


def test_custom_dataset_type_over_an_imagenet_config_names_the_setting(
        tmp_path, digits_root):
    # the everyday first try: an ImageNet config pointed at a class folder
    work_dir = tmp_path / 'work'
    proc = tool('vis_tsne.py',
                mmpretrain_config('resnet/resnet18_8xb32_in1k.py'),
                '--work-dir', work_dir, '--cfg-options',
                'test_dataloader.dataset.type=CustomDataset',
                f'test_dataloader.dataset.data_root={digits_root}')
    line = assert_one_line_error(proc, 'does not take')
    assert "'split'" in line and '--test-cfg' in line
    assert not work_dir.exists() or not os.listdir(work_dir)


def test_cifar_with_an_empty_data_root_never_downloads(tmp_path):
    empty = tmp_path / 'cifar'
    empty.mkdir()
    work_dir = tmp_path / 'work'
    proc = tool('vis_tsne.py',
                mmpretrain_config('resnet/resnet18_8xb16_cifar10.py'),
                '--work-dir', work_dir, '--cfg-options',
                f'test_dataloader.dataset.data_root={empty}')
    line = assert_one_line_error(proc, 'the CIFAR10 data is missing')
    assert 'does not download' in line and 'cifar-10-python' in line
    assert os.listdir(empty) == []  # no download was started
    assert 'urlopen' not in proc.stderr and 'Downloading' not in proc.stdout


# 3. Too few samples, and the perplexity really used -----------------------


@pytest.mark.parametrize('classes', [['0'], ['0', '1']])
def test_one_or_two_samples_is_a_clear_error(tmp_path, digits_root,
                                             classes):
    work_dir = tmp_path / 'work'
    proc = tool('vis_tsne.py', DEMO_CONFIG, '--checkpoint', DEMO_CHECKPOINT,
                '--work-dir', work_dir, '--max-num-samples', '1',
                '--perplexity', '0.5', '--class-idx', *classes,
                '--cfg-options',
                f'test_dataloader.dataset.data_root={digits_root}')
    assert_one_line_error(proc, f'at least 3 samples, got {len(classes)}')
    assert not work_dir.exists() or not os.listdir(work_dir)


def test_the_lowered_perplexity_is_what_run_json_and_the_title_say(
        tmp_path, monkeypatch):
    import tsneviz.visualization
    from tsneviz.apis import run_features
    titles = []
    plot = tsneviz.visualization.plot_embedding

    def spy(*args, **kwargs):
        titles.append(kwargs['title'])
        return plot(*args, **kwargs)

    monkeypatch.setattr(tsneviz.visualization, 'plot_embedding', spy)
    feats = np.random.default_rng(0).normal(size=(13, 6))
    run_dir = run_features(feats, work_dir=str(tmp_path),
                           tsne=dict(perplexity=9.0, n_iter=250),
                           analysis=(), show_progress=False)
    manifest = rundir.read_manifest(run_dir)
    # openTSNE uses at most (N - 1) / 3 = 4
    assert manifest['layout']['params']['perplexity'] == 4.0
    assert manifest['tsne']['params']['perplexity'] == 4.0
    assert manifest['results']['feat_0']['perplexity_requested'] == 9.0
    assert titles == ['feat_0 · features · opentsne t-SNE · perplexity 4']


# 4. Where the run is written -----------------------------------------------


def test_work_dir_that_is_a_file(tmp_path, matrix):
    work_dir = tmp_path / 'work'
    work_dir.write_text('not a folder')
    proc = tool(*features_args(matrix, work_dir))
    assert_one_line_error(proc, f'--work-dir {work_dir} is a file')
    assert work_dir.read_text() == 'not a folder'


def test_work_dir_inside_a_file(tmp_path, matrix):
    parent = tmp_path / 'file'
    parent.write_text('x')
    proc = tool(*features_args(matrix, parent / 'work'))
    assert_one_line_error(proc, 'a part of that path is a file')


def test_read_only_work_dir(tmp_path, matrix):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    proc = tool(*features_args(matrix, work_dir), patch=READ_ONLY)
    assert_one_line_error(proc, 'the file system is read-only')
    assert os.listdir(work_dir) == []


@pytest.mark.skipif(os.geteuid() == 0, reason='root may write anywhere')
def test_work_dir_without_write_permission(tmp_path, matrix):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    work_dir.chmod(0o555)
    try:
        proc = tool(*features_args(matrix, work_dir))
    finally:
        work_dir.chmod(0o755)
    assert_one_line_error(proc, 'permission denied')
    assert os.listdir(work_dir) == []


@pytest.mark.skipif(not os.access('/dev/full', os.W_OK),
                    reason='needs /dev/full')
def test_full_disk_leaves_nothing_half_written(tmp_path, matrix):
    work_dir = tmp_path / 'work'
    proc = tool(*features_args(matrix, work_dir), patch=FULL_DISK)
    line = assert_one_line_error(proc, 'the disk is full')
    assert 'feat_0.npy' in line
    assert os.listdir(work_dir) == []


def test_full_disk_in_process(tmp_path, monkeypatch):
    import errno

    from tsneviz.apis import run_features

    def full(path, write):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(rundir.io, 'atomic_write', full)
    with pytest.raises(UserError, match='disk is full'):
        run_features(np.random.default_rng(0).normal(size=(20, 4)),
                     work_dir=str(tmp_path), show_progress=False,
                     tsne=dict(perplexity=5.0, n_iter=250))
    assert os.listdir(tmp_path) == []


# 5. Damaged run directories ---------------------------------------------


@pytest.fixture(scope='module')
def good_run(tmp_path_factory, matrix):
    from tsneviz.apis import run_features
    feats, labels = matrix
    return run_features(feats, labels=labels,
                        work_dir=str(tmp_path_factory.mktemp('good')),
                        tsne=dict(perplexity=10.0, n_iter=250), analysis=(),
                        show_progress=False)


def _truncate(path, keep=0.5):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


def _drop_last_rows(path, rows=5):
    lines = open(path, newline='').read().splitlines(keepends=True)
    with open(path, 'w', newline='') as f:
        f.writelines(lines[:-rows])


DAMAGES = {
    'empty run.json': ('run.json', lambda p: open(p, 'w').close(),
                       'is empty'),
    'truncated run.json': ('run.json', _truncate, 'truncated or damaged'),
    'empty samples.csv': ('samples.csv', lambda p: open(p, 'w').close(),
                          'is empty'),
    'samples.csv cut mid-line': ('samples.csv', lambda p: _truncate(p, 0.6),
                                 'samples.csv is'),
    'samples.csv missing rows': ('samples.csv', _drop_last_rows,
                                 'has 115 rows but run.json records 120'),
    'missing features': ('feat_0.npy', os.remove, 'feat_0.npy is missing'),
    'truncated features': ('feat_0.npy', _truncate,
                           'feat_0.npy is truncated'),
    'empty layout': ('tsne_feat_0.npy', lambda p: open(p, 'w').close(),
                     'tsne_feat_0.npy is empty, truncated'),
}


def damaged(good_run, tmp_path, case):
    run_dir = str(tmp_path / 'run')
    shutil.copytree(good_run, run_dir)
    name, damage, needle = DAMAGES[case]
    damage(osp.join(run_dir, name))
    return run_dir, name, needle


@pytest.mark.parametrize('case', sorted(DAMAGES))
def test_run_refuses_a_damaged_run_naming_the_file(good_run, tmp_path,
                                                   case):
    run_dir, name, needle = damaged(good_run, tmp_path, case)
    with pytest.raises(UserError) as caught:
        run = rundir.Run(run_dir)  # run.json and samples.csv
        if name.endswith('.npy'):  # arrays: when they are read
            run.features() if name.startswith('feat') else run.coords()
    if name.endswith('.npy'):
        with pytest.raises(UserError, match=name):
            rundir.Run(run_dir).check_arrays()
    message = str(caught.value)
    assert needle in message and name in message
    assert 'run tools/vis_tsne.py again' in message
    assert len(rundir.Run(good_run)) == 120  # the original is fine


# Each tool meets a different damage; all of them go through Run.
TOOL_CASES = [
    ('report.py', 'samples.csv missing rows', ()),
    ('report.py', 'truncated run.json', ()),
    ('cluster.py', 'samples.csv cut mid-line', ()),
    ('cluster.py', 'truncated features', ()),
    ('export.py', 'empty samples.csv', ('--format', 'csv')),
    ('export.py', 'missing features', ('--format', 'projector')),
]


@pytest.mark.parametrize('name,case,extra', TOOL_CASES)
def test_tools_refuse_a_damaged_run_in_one_line(good_run, tmp_path, name,
                                                case, extra):
    run_dir, file_name, needle = damaged(good_run, tmp_path, case)
    before = sorted(os.listdir(run_dir))
    proc = tool(name, run_dir, *extra)
    line = assert_one_line_error(proc, needle)
    assert file_name in line
    assert sorted(os.listdir(run_dir)) == before  # nothing was written


def test_damaged_runs_are_not_used_as_a_feature_cache(tmp_path):
    run_dir = osp.join(str(tmp_path), 'tsne_1')
    os.makedirs(run_dir)
    rundir.write_array(osp.join(run_dir, 'feat_3.npy'), np.zeros((4, 2)))
    rundir.write_json(osp.join(run_dir, 'run.json'), {
        'n_samples': 4, 'extraction': {'feature_key': 'k',
                                       'keys': ['feat_3']}})
    assert rundir.find_cached_run(str(tmp_path), 'k') == run_dir
    _truncate(osp.join(run_dir, 'feat_3.npy'), 0.9)
    assert rundir.find_cached_run(str(tmp_path), 'k') is None


# 6. Checkpoints ---------------------------------------------------------


def _demo_state():
    checkpoint = torch.load(DEMO_CHECKPOINT, map_location='cpu',
                            weights_only=False)
    return checkpoint.get('state_dict', checkpoint)


def bad_checkpoint(tmp_path, kind):
    path = tmp_path / f'{kind}.pth'
    if kind == 'text':
        path.write_text('epoch_20.pth\n')
    elif kind == 'safetensors':
        from tests.test_checkpoint import write_safetensors
        write_safetensors(path, {'w': np.ones((2, 2))})
    elif kind == 'all shapes differ':
        torch.save({'state_dict': {
            k: torch.zeros(*(d + 1 for d in v.shape))
            for k, v in _demo_state().items() if v.ndim > 0}}, path)
    elif kind == 'zip bomb':
        from tests.test_checkpoint import zip_bomb
        zip_bomb(path, 80 << 20)
    return path


@pytest.mark.parametrize('kind,needle', [
    ('text', 'is a text file'),
    ('safetensors', 'is a safetensors file'),
    ('all shapes differ', 'have other shapes'),
    ('zip bomb', 'zip bomb'),
])
def test_unusable_checkpoints_are_one_line(tmp_path, digits_root, kind,
                                           needle):
    work_dir = tmp_path / 'work'
    proc = tool('vis_tsne.py', DEMO_CONFIG, '--checkpoint',
                bad_checkpoint(tmp_path, kind), '--work-dir', work_dir,
                '--max-num-samples', '3', '--perplexity', '5',
                '--cfg-options',
                f'test_dataloader.dataset.data_root={digits_root}')
    assert_one_line_error(proc, needle)
    assert_nothing_half_written(work_dir)
    assert not glob.glob(str(work_dir / 'tsne_*'))


def test_a_head_of_another_shape_is_recorded_and_warned(tmp_path,
                                                        digits_options):
    from tests.conftest import make_demo_run
    state = _demo_state()
    state['head.fc.weight'] = torch.zeros(11, state['head.fc.weight'].shape[1])
    state['head.fc.bias'] = torch.zeros(11)
    path = tmp_path / 'eleven.pth'
    torch.save({'state_dict': state}, path)
    run_dir = make_demo_run(tmp_path / 'work', digits_options,
                            checkpoint=str(path), max_num_samples=3,
                            tsne=dict(perplexity=5.0, n_iter=250))
    manifest = rundir.read_manifest(run_dir)
    assert manifest['checkpoint']['mismatched_keys'] == ['head.fc.bias',
                                                         'head.fc.weight']
    log = open(osp.join(run_dir, 'tsne.log')).read()
    assert 'NOT loaded' in log and 'head.fc.weight' in log
    from tsneviz.report import write_report
    markdown = open(write_report(run_dir)[0]).read()
    assert 'WARNING: 2 weight(s) have another shape and keep random ' \
        'values (head.fc.bias, head.fc.weight)' in markdown


# 7. A failed analysis step ----------------------------------------------


def test_failed_step_is_recorded_and_the_others_still_run(tmp_path,
                                                          monkeypatch):
    import tsneviz.analysis
    from tsneviz.apis import run_features

    def broken(*args, **kwargs):
        raise ValueError('no clusters today')

    monkeypatch.setattr(tsneviz.analysis, 'cluster_run', broken)
    feats = np.random.default_rng(0).normal(size=(30, 5))
    with pytest.raises(rundir.AnalysisFailed) as caught:
        run_features(feats, labels=[i % 3 for i in range(30)],
                     work_dir=str(tmp_path), show_progress=False,
                     tsne=dict(perplexity=5.0, n_iter=250),
                     analysis=('views', 'neighbors', 'clusters', 'report'))
    run_dir = glob.glob(str(tmp_path / 'tsne_*'))[0]
    message = str(caught.value)
    assert message.startswith("analysis step 'clusters' failed: "
                              'ValueError: no clusters today; ')
    # called from Python, not from a tool: the command names the API
    assert rundir.step_command('clusters', run_dir) in message
    assert "analyze_run" in message and run_dir in message
    assert caught.value.exit_code == 3
    analysis = rundir.read_manifest(run_dir)['analysis']
    assert [analysis[s]['status'] for s in
            ('views', 'neighbors', 'clusters', 'report')] == \
        ['ok', 'ok', 'failed', 'ok']
    assert analysis['clusters']['error'] == 'ValueError: no clusters today'
    assert 'no clusters today' in analysis['clusters']['traceback']
    assert osp.isfile(osp.join(run_dir, 'report.md'))  # ran after it
    assert rundir.Run(run_dir).analysis['views']['seconds'] >= 0


@pytest.mark.slow
def test_failed_step_through_the_cli_and_its_rerun(tmp_path, matrix):
    work_dir = tmp_path / 'work'
    proc = tool(*features_args(matrix, work_dir, '--analysis', 'views',
                               'clusters'), patch=FAILING_CLUSTERS)
    line = assert_one_line_error(proc, "analysis step 'clusters' failed: "
                                 'RuntimeError: boom in clustering',
                                 code=3)
    run_dir = glob.glob(str(work_dir / 'tsne_*'))[0]
    assert 'the layout and features' in line
    assert f'python tools/cluster.py {run_dir}' in line
    manifest = json.load(open(osp.join(run_dir, 'run.json')))
    assert manifest['analysis']['views']['status'] == 'ok'
    assert manifest['analysis']['clusters']['status'] == 'failed'
    # the command the error gives repairs the run, and run.json says so
    rerun = tool('cluster.py', run_dir)
    assert rerun.returncode == 0, rerun.stderr
    manifest = json.load(open(osp.join(run_dir, 'run.json')))
    assert manifest['analysis']['clusters']['status'] == 'ok'
    assert rundir.failed_steps(manifest) == []


def test_analysis_marks_steps_pending_before_they_run(good_run, tmp_path,
                                                      monkeypatch):
    import tsneviz.visualization
    from tsneviz.apis import analyze_run
    run_dir = str(tmp_path / 'run')
    shutil.copytree(good_run, run_dir)
    seen = {}

    def views(path):
        seen.update(rundir.read_manifest(path)['analysis'])

    monkeypatch.setattr(tsneviz.visualization, 'render_views', views)
    assert analyze_run(run_dir, ('views', 'report'),
                       show_progress=False) == ['views', 'report']
    assert seen == {'views': {'status': 'pending'},
                    'report': {'status': 'pending'}}
    statuses = {s: o['status'] for s, o in
                rundir.read_manifest(run_dir)['analysis'].items()}
    assert statuses == {'views': 'ok', 'report': 'ok'}
