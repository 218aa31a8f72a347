"""tools/vis_tsne.py as a user runs it: parity of arguments, one-line errors.

The logic is tested in-process elsewhere; here the script itself runs as a
subprocess, once for a whole run and cheaply for each error path.
"""
import json
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
from urllib.parse import unquote, urlparse

import pytest
import torch

from tests.conftest import DEMO_CHECKPOINT, DEMO_CONFIG, REPO

TOOL = osp.join(REPO, 'tools', 'vis_tsne.py')


def reference_tool():
    import mmpretrain
    return osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools',
                    'visualization', 'vis_tsne.py')


def cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, TOOL, *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or REPO,
                          timeout=300, env=env)


def test_every_reference_argument_is_accepted_with_its_type():
    help_text = subprocess.run([sys.executable, reference_tool(), '--help'],
                               capture_output=True, text=True).stdout
    reference = set(re.findall(r'(--[a-z][a-z-]+)', help_text)) - {'--help'}
    assert len(reference) >= 17
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        from vis_tsne import parse_args
    finally:
        sys.path.pop(0)
    args = parse_args([
        'cfg.py', '--checkpoint', 'c.pth', '--work-dir', 'w', '--test-cfg',
        't.py', '--vis-stage', 'pre_logits', '--class-idx', '1', '2',
        '--max-num-class', '5', '--max-num-samples', '7', '--cfg-options',
        'a.b=1', '--device', 'cpu', '--legend', '--show', '--n-components',
        '3', '--perplexity', '5', '--early-exaggeration', '4',
        '--learning-rate', '100', '--n-iter', '300',
        '--n-iter-without-progress', '50', '--init', 'random'])
    given = {f'--{k.replace("_", "-")}' for k, v in vars(args).items()
             if v not in (None, False)}
    assert reference <= given | {'--legend', '--show'}
    assert (args.class_idx, args.max_num_class, args.max_num_samples) == \
        ([1, 2], 5, 7)
    assert args.cfg_options == {'a.b': 1}
    assert (args.perplexity, args.learning_rate, args.n_iter) == \
        (5.0, 100.0, 300)
    assert args.legend is True and args.show is True
    # defaults of the reference's sampling flags are kept
    defaults = parse_args(['cfg.py'])
    assert (defaults.max_num_class, defaults.max_num_samples) == (20, 100)


@pytest.mark.slow
def test_a_whole_run_prints_its_run_directory(tmp_path, digits_root):
    # a work dir with a space, and --show where no window can open
    env = {k: v for k, v in os.environ.items()
           if k not in ('DISPLAY', 'WAYLAND_DISPLAY')}
    proc = cli(DEMO_CONFIG, '--checkpoint', DEMO_CHECKPOINT, '--work-dir',
               tmp_path / 'my runs', '--max-num-samples', '8',
               '--perplexity', '8', '--n-iter', '300', '--show',
               '--cfg-options',
               f'test_dataloader.dataset.data_root={digits_root}', env=env)
    assert proc.returncode == 0, proc.stderr
    run_dir = proc.stdout.strip().splitlines()[-1]
    assert osp.isfile(osp.join(run_dir, 'run.json'))
    assert json.load(open(osp.join(run_dir, 'run.json')))['n_samples'] == 80
    assert 'Traceback' not in proc.stderr
    with open(osp.join(run_dir, 'tsne.log')) as f:
        assert 'Apply t-SNE to visualize 80 samples of 10 classes.' in \
            f.read()
    lines = proc.stderr.splitlines()
    # one warning: the plot is saved, not shown, and where it is
    warnings = [line for line in lines if line.startswith('warning:')]
    assert len(warnings) == 1 and warnings[0].startswith(
        'warning: --show: there is no display')
    plot = osp.join(run_dir, 'feat_3.png')
    assert warnings[0].endswith(plot) and osp.isfile(plot)
    # links and commands that survive the space when pasted
    uri = next(line for line in lines if line.startswith('explorer: '))
    uri = uri.split(' ', 1)[1]
    assert uri.startswith('file:///') and ' ' not in uri
    assert unquote(urlparse(uri).path) == \
        osp.join(osp.abspath(run_dir), 'index.html')
    serve = next(line for line in lines if line.startswith('serve: '))
    words = shlex.split(serve.split(':', 1)[1])
    assert words[0] == 'python' and len(words) == 3
    assert osp.isfile(osp.join(REPO, words[1]))
    assert words[2] == osp.dirname(osp.abspath(run_dir))


def test_display_problem(monkeypatch):
    import matplotlib

    from tsneviz.cli import display_problem
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    monkeypatch.setattr(sys, 'platform', 'linux')
    assert 'no display' in display_problem()
    monkeypatch.setenv('DISPLAY', ':0')
    monkeypatch.setattr(matplotlib, 'get_backend', lambda: 'agg')
    assert 'backend agg cannot open a window' in display_problem()
    monkeypatch.setattr(matplotlib, 'get_backend', lambda: 'TkAgg')
    assert display_problem() is None


@pytest.mark.slow
def test_log_counts_only_classes_with_samples(tmp_path, digits_root):
    from tests.conftest import make_demo_run
    root = tmp_path / 'digits'
    shutil.copytree(digits_root, root)
    for png in (root / 'val' / '9').glob('*.png'):
        png.unlink()  # class 9 exists, without samples
    run_dir = make_demo_run(
        tmp_path / 'work', {'test_dataloader.dataset.data_root': str(root),
                            'test_dataloader.num_workers': 0},
        class_idx=[7, 8, 9], max_num_samples=6, tsne=dict(perplexity=3.0))
    with open(osp.join(run_dir, 'tsne.log')) as f:
        assert ('Apply t-SNE to visualize 12 samples of 2 classes (1 of '
                'the 3 classes asked for have no samples).') in f.read()


class Payload:
    """Unpickling this would create a marker directory."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (self.marker, )


@pytest.fixture
def hostile_checkpoint(tmp_path):
    marker = tmp_path / 'code-ran'
    path = tmp_path / 'hostile.pth'
    torch.save({'state_dict': {}, 'meta': Payload(str(marker))}, path)
    return path, marker


def error_cases(tmp_path, digits_root, hostile):
    root = f'test_dataloader.dataset.data_root={digits_root}'
    return {
        'missing config': (['nope.py'], 'config not found: nope.py'),
        'missing checkpoint': ([DEMO_CONFIG, '--checkpoint', 'nope.pth'],
                               'checkpoint not found'),
        'class out of range': ([DEMO_CONFIG, '--class-idx', '3', '12',
                                '--cfg-options', root],
                               'the dataset has 10 classes'),
        'no samples per class': ([DEMO_CONFIG, '--max-num-samples', '0',
                                  '--cfg-options', root],
                                 '--max-num-samples must be at least 1'),
        'perplexity too large': ([DEMO_CONFIG, '--max-num-samples', '2',
                                  '--perplexity', '30', '--cfg-options',
                                  root], 'perplexity 30 is too large for 20'),
        'missing dataset root': ([DEMO_CONFIG, '--cfg-options',
                                  'test_dataloader.dataset.data_root=/nope'],
                                 'dataset root not found: /nope'),
        'unknown stage': ([DEMO_CONFIG, '--vis-stage', 'layer9',
                           '--max-num-samples', '2', '--perplexity', '5',
                           '--cfg-options', root],
                          "unknown stage 'layer9'"),
        'bad init': ([DEMO_CONFIG, '--init', 'umap'], "init='umap'"),
        'hostile checkpoint': ([DEMO_CONFIG, '--checkpoint', hostile,
                                '--max-num-samples', '2', '--perplexity',
                                '5', '--cfg-options', root],
                               '--trust-checkpoint'),
    }


@pytest.mark.parametrize('case', [
    'missing config', 'missing checkpoint', 'class out of range',
    'no samples per class', 'perplexity too large', 'missing dataset root',
    'unknown stage', 'bad init', 'hostile checkpoint'])
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, digits_root,
                                         hostile_checkpoint):
    hostile, marker = hostile_checkpoint
    args, needle = error_cases(tmp_path, digits_root, hostile)[case]
    work_dir = tmp_path / 'work'
    proc = cli(*args, '--work-dir', work_dir)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith('error: ') and needle in lines[-1]
    assert 'Traceback' not in proc.stderr
    # nothing that looks like a finished run is left behind
    assert not list(work_dir.glob('tsne_*/run.json'))
    assert not list(work_dir.glob('tsne_*'))
    assert not marker.exists()


@pytest.mark.slow
def test_views_tool_draws_the_asked_colourings(tmp_path, digits_root):
    run = cli(DEMO_CONFIG, '--checkpoint', DEMO_CHECKPOINT, '--work-dir',
              tmp_path, '--max-num-samples', '5', '--perplexity', '5',
              '--n-iter', '250', '--analysis', '--cfg-options',
              f'test_dataloader.dataset.data_root={digits_root}')
    run_dir = run.stdout.strip().splitlines()[-1]
    tool = osp.join(REPO, 'tools', 'views.py')
    proc = subprocess.run([sys.executable, tool, run_dir, '--views', 'loss',
                           'prediction'], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert [osp.basename(p) for p in proc.stdout.split()] == \
        ['feat_3_loss.png', 'feat_3_prediction.png']
    bad = subprocess.run([sys.executable, tool, str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and 'no run.json' in bad.stderr
    assert 'Traceback' not in bad.stderr
