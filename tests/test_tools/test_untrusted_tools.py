"""What a new user met in the tools: 3-D maps shown flat without a word,
and data changed silently (skipped images, a folder read as a class id,
unlike runs followed as checkpoints).

Real runs made from the test digits (``run_features``: no model), real
dataset folders built through mmpretrain's ``CustomDataset``, the explorer
page in a real headless Chromium, and the tools as subprocesses.
"""
import logging
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import (DEMO_CHECKPOINT, DEMO_CONFIG, REPO,
                            digits_sample, make_features_run)
from tests.test_explorer.test_page import CHROMIUM_ARGS, ensure_chromium
from tsneviz.errors import UserError

PER_CLASS = 10
NOTE = 'axes 1-2 of a 3-D map'
SCAN_LOG = 'tsneviz.data.scan'


def _tool(name, *args, cwd=REPO):
    return subprocess.run([sys.executable, osp.join(REPO, 'tools', name),
                           *map(str, args)], capture_output=True, text=True,
                          cwd=str(cwd), timeout=600)


@pytest.fixture(scope='module')
def maps(tmp_path_factory, digits_root):
    """The same 100 digits laid out three ways: t-SNE 2-D and 3-D (with
    their reliability, report and explorer), and PCA."""
    tmp = tmp_path_factory.mktemp('maps')
    steps = ('reliability', 'report', 'explorer')
    return dict(
        tsne2=make_features_run(tmp / 'tsne2', digits_root, PER_CLASS,
                                analysis=steps),
        tsne3=make_features_run(tmp / 'tsne3', digits_root, PER_CLASS,
                                tsne=dict(perplexity=10.0, n_iter=300,
                                          n_components=3),
                                analysis=steps),
        pca=make_features_run(tmp / 'pca', digits_root, PER_CLASS,
                              method='pca', tsne=dict(perplexity=None)))


@pytest.fixture(scope='module')
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=ensure_chromium(),
                                      args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# 13. 3-D runs: a flat view says which axes it shows ----------------------


def test_explorer_of_a_3d_run_says_it_shows_two_axes(browser, maps):
    from tsneviz.explorer import PAGE
    page = browser.new_page()
    try:
        page.goto('file://' + osp.join(maps['tsne3'], PAGE))
        label = page.locator('#tsneviz-axes')
        assert label.is_visible()
        assert label.inner_text().strip() == NOTE
        assert label.bounding_box()['height'] > 0
        page.goto('file://' + osp.join(maps['tsne2'], PAGE))
        page.locator('#tsneviz-header h1').wait_for()
        assert page.locator('#tsneviz-axes').count() == 0
        assert NOTE not in page.locator('#tsneviz-header').inner_text()
    finally:
        page.close()


def test_reliability_figure_and_report_of_a_3d_run_say_so(maps,
                                                          monkeypatch,
                                                          tmp_path):
    from matplotlib.axes import Axes

    from tsneviz.analysis.reliability import plot_reliability
    from tsneviz.rundir import REPORT_MD, Run

    for name, shown in (('tsne3', True), ('tsne2', False)):
        report = open(osp.join(maps[name], REPORT_MD),
                      encoding='utf-8').read()
        section = report.split('Where the map can be trusted')[1]
        assert (f'The figure below draws {NOTE}.' in section) == shown
    titles = []
    set_title = Axes.set_title
    monkeypatch.setattr(Axes, 'set_title', lambda ax, text, *a, **k: (
        titles.append(text), set_title(ax, text, *a, **k))[1])
    for name in ('tsne3', 'tsne2'):
        run = Run(maps[name])
        plot_reliability(run.coords(), np.full(len(run), 0.5), [],
                         str(tmp_path / f'{name}.png'), title='reliability')
    assert titles == [f'reliability\n{NOTE}', 'reliability']
