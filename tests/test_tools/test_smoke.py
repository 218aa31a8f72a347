"""Every tools/*.py script starts, documents itself and refuses nonsense.

A smoke test per script, as a user first meets it: ``--help`` exits 0 with
a usage line naming the script, and an unknown option exits 2 with
argparse's complaint, no traceback. What each tool does is tested
with the module it is a shell of (tests/test_analysis, test_exporters, ...).
"""
import glob
import os.path as osp
import subprocess
import sys

import pytest

from tests.conftest import REPO

TOOLS = sorted(osp.basename(p)
               for p in glob.glob(osp.join(REPO, 'tools', '*.py')))


def test_the_tools_are_found():
    assert {'vis_tsne.py', 'serve.py', 'export.py', 'cluster.py'} <= \
        set(TOOLS)


@pytest.mark.parametrize('name', TOOLS)
def test_help_and_unknown_option(name):
    tool = osp.join(REPO, 'tools', name)
    done = subprocess.run([sys.executable, tool, '--help'],
                          capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f'usage: {name}'), done.stdout[:200]
    assert 'Traceback' not in done.stderr
    bad = subprocess.run([sys.executable, tool, '--no-such-option'],
                         capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert bad.returncode == 2, bad.stderr[-2000:]
    assert bad.stderr.strip().splitlines()[-1].startswith(
        f'{name}: error: '), bad.stderr[-2000:]
    assert 'Traceback' not in bad.stderr
