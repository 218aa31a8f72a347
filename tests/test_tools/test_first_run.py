"""What a new user meets first: the launcher's interpreter, spaces lost by
``--cfg-options``, an analysis cut short by Ctrl-C, the neighbour grid's
name, class names in CJK, the perplexity as printed and run folder names.
"""
import json
import os
import os.path as osp
import shlex
import shutil
import stat
import subprocess
import sys
import warnings

import matplotlib
import numpy as np
import pytest
from fastapi.testclient import TestClient
from matplotlib import font_manager
from mmengine.logging import MMLogger

import tsneviz.explorer
from tests.conftest import (
    DEMO_CONFIG,
    REPO,
    digits_sample,
    make_demo_run,
    make_features_run,
)
from tsneviz import rundir
from tsneviz.server.app import create_app
from tsneviz.server.jobs import _last_log_line
from tsneviz.visualization import plot_embedding


def _script(path, text):
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return str(path)


def _launcher_repo(tmp_path, with_venv):
    """A checkout with the launcher, and a .venv whose python logs its use.

    ``tools/vis_tsne.py`` and ``tsneviz`` are links to this repository's,
    so the launcher's torchrun really starts the tool.
    """
    repo = tmp_path / 'repo'
    (repo / 'tools').mkdir(parents=True)
    shutil.copy(osp.join(REPO, 'tools', 'dist_vis_tsne.sh'), repo / 'tools')
    os.symlink(osp.join(REPO, 'tools', 'vis_tsne.py'),
               repo / 'tools' / 'vis_tsne.py')
    os.symlink(osp.join(REPO, 'tsneviz'), repo / 'tsneviz')
    used = tmp_path / 'venv_python_used'
    if with_venv:
        (repo / '.venv' / 'bin').mkdir(parents=True)
        _script(repo / '.venv' / 'bin' / 'python',
                f'#!/bin/sh\necho "$@" >> {used}\n'
                f'exec {sys.executable} "$@"\n')
    # a `python` on PATH that is not the project's: it cannot import torch
    fake = tmp_path / 'bin'
    fake.mkdir()
    _script(fake / 'python', '#!/bin/sh\nexit 1\n')
    env = dict(os.environ, PATH=f'{fake}:/usr/bin:/bin')
    env.pop('PYTHON', None)
    env.pop('VIRTUAL_ENV', None)
    return repo, used, env


def _launch(repo, env, *args):
    return subprocess.run(
        ['bash', str(repo / 'tools' / 'dist_vis_tsne.sh'), *args],
        capture_output=True, text=True, env=env, cwd=str(repo), timeout=300)


@pytest.mark.dist
@pytest.mark.slow
def test_launcher_uses_the_repository_venv_not_path(tmp_path):
    repo, used, env = _launcher_repo(tmp_path, with_venv=True)
    done = _launch(repo, env, 'CONFIG.py', '1', '--help')
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'usage: vis_tsne.py' in done.stdout
    assert '-m torch.distributed.run' in used.read_text()


@pytest.mark.dist
@pytest.mark.slow
def test_launcher_takes_python_from_the_environment(tmp_path):
    repo, used, env = _launcher_repo(tmp_path, with_venv=True)
    chosen = tmp_path / 'chosen_used'
    env['PYTHON'] = _script(tmp_path / 'chosen',
                            f'#!/bin/sh\necho "$@" >> {chosen}\n'
                            f'exec {sys.executable} "$@"\n')
    done = _launch(repo, env, 'CONFIG.py', '1', '--help')
    assert done.returncode == 0, done.stderr[-3000:]
    assert '-m torch.distributed.run' in chosen.read_text()
    assert not used.exists()


@pytest.mark.dist
def test_launcher_without_torch_says_so_in_one_line(tmp_path):
    repo, _, env = _launcher_repo(tmp_path, with_venv=False)
    done = _launch(repo, env, 'CONFIG.py', '1', '--help')
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith('error: python cannot import torch; ')
    assert 'PYTHON' in lines[0] and 'make venv' in lines[0]


def _vis_tsne(*args, cwd):
    return subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'vis_tsne.py'), *args],
        capture_output=True, text=True, cwd=str(cwd), timeout=300)


def test_cfg_options_path_that_needs_its_spaces_is_refused(tmp_path):
    data = tmp_path / 'my data'
    data.mkdir()
    key = 'test_dataloader.dataset.data_root'
    for words in ([f'{key}={data}'],  # quoted: DictAction drops the space
                  f'{key}={data}'.split(' ')):  # unquoted: split in two
        done = _vis_tsne(DEMO_CONFIG, '--work-dir', tmp_path / 'work',
                         '--cfg-options', *words, cwd=tmp_path)
        assert done.returncode == 2, done.stderr[-3000:]
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and 'Traceback' not in done.stderr, \
            done.stderr[-3000:]
        assert lines[0].startswith(f'error: --cfg-options {key}=')
        assert f"'{tmp_path}/mydata' does not exist" in lines[0]
        assert f"set {key} to '{data}' in the config file" in lines[0]
        # the old advice, to pass it with --cfg-options, is gone
        assert f'--cfg-options {key}=PATH' not in lines[0]
    assert not (tmp_path / 'work').exists()


def test_cfg_options_word_without_a_key_is_one_line(tmp_path):
    done = _vis_tsne(DEMO_CONFIG, '--cfg-options',
                     'test_dataloader.batch_size=8', 'oops', cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --cfg-options: 'oops' is not KEY=VALUE; give each setting "
        'as key=value (a value cannot hold spaces: set such a value in '
        'the config file)'], done.stderr[-3000:]


def _ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt  # what Ctrl-C raises in the main thread


def test_ctrl_c_in_the_analysis_names_the_tool_and_the_server_shows_it(
        tmp_path, digits_root, monkeypatch):
    work = tmp_path / 'work'
    monkeypatch.setattr(tsneviz.explorer, 'write_explorer', _ctrl_c)
    try:
        make_features_run(work, digits_root, per_class=6,
                          analysis=('views', 'explorer'))
    except KeyboardInterrupt as err:  # never let it stop the test session
        caught = err
    else:
        pytest.fail('the interrupt was swallowed')
    monkeypatch.undo()
    assert isinstance(caught, rundir.AnalysisInterrupted)
    run_dir, = [str(p) for p in work.iterdir()]
    finish = rundir.step_command('explorer', run_dir)
    assert str(caught) == (
        "interrupted during the analysis step 'explorer': the run "
        f'{run_dir} is complete and usable, with the step \'explorer\' '
        f'left pending in run.json; finish it with {finish}')
    analysis = rundir.read_manifest(run_dir)['analysis']
    assert analysis['views']['status'] == 'ok'
    assert analysis['explorer'] == {'status': 'pending'}

    client = TestClient(create_app(str(work)), base_url='http://127.0.0.1')
    summary, = client.get('/api/runs').json()['runs']
    assert summary['complete'] is False
    assert summary['pending_steps'] == ['explorer']
    assert summary['failed_steps'] == []
    assert '(incomplete: explorer pending)' in client.get('/').text

    # the command the line names finishes the run, and the listing says so
    python, *command = shlex.split(finish)
    assert python == 'python'
    done = subprocess.run([sys.executable, *command], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary, = client.get('/api/runs').json()['runs']
    assert summary['complete'] is True and summary['pending_steps'] == []
    assert summary['has_explorer'] is True
    assert 'incomplete' not in client.get('/').text

    # the server, making a missing page on demand, finishes the step too
    rundir.record_analysis(run_dir, {'explorer': {'status': 'pending'}})
    os.remove(osp.join(run_dir, rundir.EXPLORER_PAGE))
    assert client.get('/api/runs').json()['runs'][0]['complete'] is False
    assert client.get(f'/runs/{summary["id"]}/').status_code == 200
    assert client.get('/api/runs').json()['runs'][0]['complete'] is True


def test_ctrl_c_in_the_analysis_is_one_line_from_the_tool(tmp_path,
                                                          digits_root):
    feats, labels, images = digits_sample(digits_root, per_class=6)
    np.save(tmp_path / 'feats.npy', feats)
    (tmp_path / 'labels.txt').write_text(''.join(f'{y}\n' for y in labels))
    (tmp_path / 'images.txt').write_text(''.join(f'{p}\n' for p in images))
    work = tmp_path / 'work'
    patch = ('import tsneviz.explorer\n'
             'def ctrl_c(*args, **kwargs):\n'
             '    raise KeyboardInterrupt\n'
             'tsneviz.explorer.write_explorer = ctrl_c\n'
             'import runpy, sys\nsys.argv = sys.argv[1:]\n'
             "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    done = subprocess.run(
        [sys.executable, '-c', patch, osp.join(REPO, 'tools', 'vis_tsne.py'),
         '--features', str(tmp_path / 'feats.npy'), '--labels',
         str(tmp_path / 'labels.txt'), '--images',
         str(tmp_path / 'images.txt'), '--work-dir', str(work),
         '--perplexity', '10', '--n-iter', '250', '--analysis', 'views',
         'neighbors', 'explorer'],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 130, done.stderr[-3000:]
    assert 'Traceback' not in done.stderr
    errors = [line for line in done.stderr.splitlines()
              if line.startswith('error:')]
    assert errors == done.stderr.strip().splitlines()[-1:], \
        done.stderr[-3000:]
    run_dir, = [str(p) for p in work.iterdir()]
    assert errors[0].startswith(
        "error: interrupted during the analysis step 'explorer': the run "
        f'{run_dir} is complete and usable')
    assert errors[0].endswith(f'python tools/explore.py {run_dir}')
    manifest = json.load(open(osp.join(run_dir, 'run.json')))
    assert rundir.pending_steps(manifest) == ['explorer']
    assert manifest['analysis']['neighbors']['status'] == 'ok'


def test_neighbor_grid_is_named_by_the_row_typed(tmp_path, digits_options):
    run_dir = make_demo_run(tmp_path / 'work', digits_options,
                            max_num_samples=4, tsne=dict(perplexity=5.0,
                                                         n_iter=250))
    # a random sample: row 5 is another image of the dataset
    dataset_index = int(rundir.Run(run_dir).table['index'][5])
    assert dataset_index != 5
    done = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'neighbors.py'), run_dir,
         '--index', '5', '--k', '8'],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout.strip().splitlines()[-1]
    assert out == osp.join(run_dir, rundir.NEIGHBOR_GRIDS, 'index_5_k8.png')
    assert osp.isfile(out)
    assert not osp.exists(osp.join(run_dir, rundir.NEIGHBOR_GRIDS,
                                   f'index_{dataset_index}_k8.png'))


def test_perplexity_used_for_few_samples_is_shown_short(tmp_path,
                                                        digits_root):
    # 90 samples: openTSNE uses (90 - 1) / 3 instead of the 30 asked for
    run_dir = make_features_run(tmp_path / 'work', digits_root, per_class=9,
                                tsne=dict(perplexity=30.0, n_iter=250),
                                analysis=('report',))
    used = rundir.Run(run_dir).layout_params['perplexity']
    assert used == pytest.approx(89 / 3)
    for name in (rundir.REPORT_MD, rundir.REPORT_HTML):
        with open(osp.join(run_dir, name), encoding='utf-8') as f:
            text = f.read()
        assert 'perplexity 29.6667,' in text
        assert str(used) not in text


def test_runs_are_named_after_their_method_and_still_found(tmp_path,
                                                           digits_options):
    work = tmp_path / 'work'
    pca = make_demo_run(work, digits_options, max_num_samples=4,
                        method='pca', tsne={})
    assert osp.basename(pca).startswith('pca_')
    assert osp.isfile(osp.join(pca, rundir.log_file('pca')))
    # a job's progress is the last line of its run's log, any method's
    assert _last_log_line(str(work), since=0) is not None
    # the reference's name for t-SNE, and its features come from the
    # cache of the PCA run: the same config, checkpoint, stage and samples
    tsne = make_demo_run(work, digits_options, max_num_samples=4,
                         tsne=dict(perplexity=5.0, n_iter=250))
    assert osp.basename(tsne).startswith('tsne_')
    extraction = rundir.Run(tsne).manifest['extraction']
    assert extraction['cached_from'] == osp.abspath(pca)
    client = TestClient(create_app(str(work)), base_url='http://127.0.0.1')
    listed = {r['id']: r for r in client.get('/api/runs').json()['runs']}
    assert set(listed) == {osp.basename(pca), osp.basename(tsne)}


CJK_NAMES = ['日本', '中国', 'cat']


def _cjk_font(path, family):
    """A real TrueType font with a glyph (a square) for 日, 本, 中 and 国."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    chars = {ord(c): f'uni{ord(c):04X}' for c in '日本中国'}
    order = ['.notdef', *chars.values()]

    def square():
        pen = TTGlyphPen(None)
        pen.moveTo((100, 0))
        pen.lineTo((100, 700))
        pen.lineTo((900, 700))
        pen.lineTo((900, 0))
        pen.closePath()
        return pen.glyph()

    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder(order)
    builder.setupCharacterMap(chars)
    builder.setupGlyf({name: square() for name in order})
    builder.setupHorizontalMetrics({name: (1000, 100) for name in order})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable(dict(familyName=family, styleName='Regular'))
    builder.setupOS2(sTypoAscender=800, usWinAscent=800, usWinDescent=200)
    builder.setupPost()
    builder.save(str(path))
    return str(path)


def _plot_and_listen(tmp_path, name):
    """Plot CJK_NAMES; return matplotlib's warnings and tsneviz's log."""
    log = tmp_path / f'{name}.log'
    MMLogger.get_instance(f'fonts_{name}_{tmp_path}', logger_name='tsneviz',
                          log_file=str(log))
    coords = np.random.default_rng(0).normal(size=(30, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        for i in range(2):  # the second plot must not warn again
            plot_embedding(coords, np.arange(30) % 3, CJK_NAMES,
                           tmp_path / f'{name}_{i}.png', legend=True)
    for handler in MMLogger.get_current_instance().handlers:
        handler.flush()
    return ([str(w.message) for w in caught],
            [line for line in log.read_text().splitlines()
             if 'WARNING' in line])


@pytest.fixture
def fonts(monkeypatch):
    """matplotlib's font list and settings, restored after the test."""
    manager = font_manager.fontManager
    monkeypatch.setattr(manager, 'ttflist', list(manager.ttflist))
    monkeypatch.setattr('tsneviz.fonts._warned', False)
    with matplotlib.rc_context():
        yield manager


def test_cjk_class_names_use_an_installed_cjk_font(tmp_path, fonts):
    family = 'Tsneviz Test CJK'
    fonts.addfont(_cjk_font(tmp_path / 'cjk.ttf', family))
    glyph_warnings, logged = _plot_and_listen(tmp_path, 'with')
    assert not [w for w in glyph_warnings if 'missing from font' in w]
    assert logged == []
    assert matplotlib.rcParams['font.family'][-1] == family


def test_cjk_class_names_without_a_font_warn_once(tmp_path, fonts,
                                                  monkeypatch):
    # a machine with matplotlib's own DejaVu fonts only
    monkeypatch.setattr(fonts, 'ttflist', [
        f for f in fonts.ttflist if f.name.startswith('DejaVu')])
    glyph_warnings, logged = _plot_and_listen(tmp_path, 'without')
    assert len(logged) == 1, logged
    assert 'will show as boxes' in logged[0]
    assert 'apt-get install fonts-noto-cjk' in logged[0]
    # matplotlib's one warning per character is not repeated after it
    assert not [w for w in glyph_warnings if 'missing from font' in w]
    assert matplotlib.rcParams['font.family'] == ['sans-serif']
