"""What a new user meets first: the launcher's interpreter, spaces lost by
``--cfg-options``, an analysis cut short by Ctrl-C, the neighbour grid's
name, class names in CJK, the perplexity as printed and run folder names.
"""
import os
import os.path as osp
import shutil
import stat
import subprocess
import sys

from tests.conftest import DEMO_CONFIG, REPO


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


def test_launcher_uses_the_repository_venv_not_path(tmp_path):
    repo, used, env = _launcher_repo(tmp_path, with_venv=True)
    done = _launch(repo, env, 'CONFIG.py', '1', '--help')
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'usage: vis_tsne.py' in done.stdout
    assert '-m torch.distributed.run' in used.read_text()


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
