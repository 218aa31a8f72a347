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

from tests.conftest import (
    DEMO_CHECKPOINT,
    DEMO_CONFIG,
    REPO,
    digits_sample,
    make_features_run,
)
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


# 14. Images a folder scan leaves out are named ---------------------------


def _class_folders(root, digits_root, extra=True):
    """A two-class folder of 6 PNGs each; with ``extra``, 2 WEBP and a GIF
    in class 0 and files that are no samples (a note, a hidden image)."""
    for label in ('0', '1'):
        source = osp.join(digits_root, 'val', label)
        target = osp.join(root, label)
        os.makedirs(target)
        for name in sorted(os.listdir(source))[:6]:
            shutil.copy(osp.join(source, name), target)
    if extra:
        folder = osp.join(root, '0')
        first = osp.join(folder, sorted(os.listdir(folder))[0])
        with Image.open(first) as img:
            img.save(osp.join(folder, 'w1.webp'))
            img.save(osp.join(folder, 'w2.webp'))
            img.save(osp.join(folder, 'g.gif'))
            img.save(osp.join(folder, '.hidden.gif'))
        with open(osp.join(folder, 'notes.txt'), 'w') as f:
            f.write('not an image\n')
    return str(root)


def _scan_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == SCAN_LOG]


def test_custom_dataset_names_the_images_it_skipped(tmp_path, digits_root,
                                                    caplog):
    from tsneviz.data import build_dataset

    root = _class_folders(tmp_path / 'data', digits_root)
    config = dict(dataset=dict(type='CustomDataset', data_root=root,
                               pipeline=[]))
    with caplog.at_level(logging.WARNING, logger=SCAN_LOG):
        dataset = build_dataset(config)
    assert len(dataset) == 12
    [line] = _scan_lines(caplog)
    assert line.startswith(f'3 image files were skipped under {root} '
                           '(2 .webp, 1 .gif; e.g. 0/g.gif, 0/w1.webp, '
                           '0/w2.webp)')
    assert 'CustomDataset reads only .bmp, .jpeg, .jpg' in line
    assert 'notes.txt' not in line and 'hidden' not in line
    # the setting the line gives reads them all, and nothing is skipped
    setting = line.split('test_dataloader.dataset.extensions=')[1]
    config['dataset']['extensions'] = eval(setting)  # a tuple literal
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=SCAN_LOG):
        assert len(build_dataset(config)) == 15
    assert _scan_lines(caplog) == []


@pytest.mark.slow
def test_vis_tsne_on_a_folder_warns_of_skipped_images(tmp_path,
                                                      digits_root):
    # the demo config reads <data_root>/val
    _class_folders(tmp_path / 'data' / 'val', digits_root)
    work_dir = tmp_path / 'work'
    done = _tool('vis_tsne.py', DEMO_CONFIG, '--checkpoint', DEMO_CHECKPOINT,
                 '--work-dir', work_dir, '--perplexity', '3', '--analysis',
                 '--cfg-options',
                 f'test_dataloader.dataset.data_root={tmp_path / "data"}',
                 'test_dataloader.num_workers=0',
                 'test_dataloader.persistent_workers=False')
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    lines = [line for line in output.splitlines()
             if 'were skipped' in line]
    assert len(lines) == 1, output[-3000:]
    assert '3 image files were skipped' in lines[0]
    assert 'test_dataloader.dataset.extensions=' in lines[0]


def test_image_folders_of_the_tools_name_skipped_images(tmp_path,
                                                        digits_root, caplog):
    from tsneviz.analysis.placement import list_images
    from tsneviz.data.matrix import load_images

    root = _class_folders(tmp_path / 'data', digits_root)
    with caplog.at_level(logging.WARNING, logger=SCAN_LOG):
        assert len(load_images(root, 14)) == 14  # .webp is read here
        paths, _ = list_images(root)
    assert len(paths) == 14
    lines = _scan_lines(caplog)
    assert len(lines) == 2
    assert all(line.startswith('1 image file was skipped') and
               '0/g.gif' in line for line in lines)
    assert 'list every image in a text file' in lines[0]
    assert 'pass that to --images' in lines[1]
    # named directly, a GIF is an image, not a list file
    gif = osp.join(root, '0', 'g.gif')
    assert list_images(gif) == ([gif], [None])


# 14. place.py --labels: a folder is a class name, not an id --------------

#: Class names, sorted as run_features sorts them: '2' is class 0, and
#: the id 2 is class 'b'.
NAMES = ['2', 'a', 'b', 'c', 'd', 'e', 'f', 'g', '中国', '日本']


@pytest.fixture(scope='module')
def named_run(tmp_path_factory, digits_root):
    from tsneviz.apis import run_features
    feats, labels, images = digits_sample(digits_root, PER_CLASS)
    return run_features(feats, labels=[NAMES[y] for y in labels],
                        images=images,
                        work_dir=str(tmp_path_factory.mktemp('named')),
                        tsne=dict(perplexity=10.0, n_iter=250), analysis=(),
                        show_progress=False)


def _folder_labels(run_dir, tmp_path, folder):
    from tsneviz.analysis.placement import read_labels
    from tsneviz.rundir import Run
    image = str(tmp_path / 'new' / folder / 'x.png')
    return read_labels('folder', [image], [str(tmp_path / 'new')],
                       Run(run_dir))


def test_a_numeric_folder_is_no_class_id_on_a_named_run(named_run,
                                                        tmp_path):
    from tsneviz.rundir import Run
    assert Run(named_run).label_space.dataset_classes() == NAMES
    with pytest.raises(UserError) as err:
        _folder_labels(named_run, tmp_path, '1')
    message = str(err.value)
    assert "its folder '1' is not a class of the run" in message
    assert '中国' in message and '\n' not in message
    # names come first: a folder named after a class is that class
    assert _folder_labels(named_run, tmp_path, '日本').tolist() == [9]
    assert _folder_labels(named_run, tmp_path, '2').tolist() == [0]


def test_a_label_that_is_a_name_and_another_id_is_refused(named_run,
                                                          tmp_path):
    from tsneviz.analysis.placement import read_labels
    from tsneviz.rundir import Run
    run = Run(named_run)
    images = [str(tmp_path / 'x.png')]
    assert read_labels(['中国'], images, [None], run).tolist() == [8]
    assert read_labels(['3'], images, [None], run).tolist() == [3]
    with pytest.raises(UserError) as err:
        read_labels(['2'], images, [None], run)
    message = str(err.value)
    assert "label '2' is the name of class 0 and the id of class 2 ('b')" \
        in message
    assert '--labels without a file' in message and '\n' not in message


def test_place_tool_refuses_an_ambiguous_label_in_one_line(named_run,
                                                          tmp_path):
    # feature rows take their labels from a file (folders need a model to
    # read images, which this run has not: their case is read_labels' own)
    np.save(tmp_path / 'rows.npy', np.zeros((1, 64), np.float32))
    (tmp_path / 'labels.txt').write_text('2\n')
    done = _tool('place.py', named_run, '--features', tmp_path / 'rows.npy',
                 '--labels', tmp_path / 'labels.txt', cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert 'Traceback' not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ')
    assert 'is the name of class 0 and the id of class 2' in lines[0]


# 14. compare.py follows one layout, and says when checkpoints repeat -----


def test_checkpoints_of_mixed_layouts_are_refused(maps):
    from tsneviz.compare import compare_checkpoints
    for names, needle in (
            (('tsne2', 'tsne3', 'pca'), 'tsne 3-D'),
            (('tsne2', 'pca'), 'pca 2-D'),
            (('tsne2', 'tsne3'), 'tsne 3-D')):
        with pytest.raises(UserError) as err:
            compare_checkpoints([maps[n] for n in names])
        message = str(err.value)
        assert message.startswith('the runs are laid out differently')
        assert needle in message and '--method and --n-components' \
            in message and '\n' not in message
    done = _tool('compare.py', maps['tsne2'], maps['tsne3'], maps['pca'])
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        'error: the runs are laid out differently'), lines
    assert not any(n.startswith('checkpoints_') for n in
                   os.listdir(osp.dirname(maps['tsne2'])))


def test_the_same_checkpoint_twice_is_warned(maps, tmp_path):
    from tsneviz.compare import compare_checkpoints
    from tsneviz.rundir import update_manifest
    runs = []
    for name in ('epoch_1', 'epoch_2'):
        runs.append(shutil.copytree(maps['tsne2'], tmp_path / name))
        update_manifest(runs[-1], {'checkpoint': dict(
            path=f'/ckpt/{name}.pth', sha256='ab' * 32, trusted=False)})
    result = compare_checkpoints(runs, out_dir=str(tmp_path / 'out'))
    assert result['notes'][0] == (
        'Warning: checkpoints 1, 2 (sha256 abababababab) are the same file: '
        "their maps differ by the layout's chance alone; pass one run per "
        'distinct checkpoint.')
    md = open(result['files']['md'], encoding='utf-8').read()
    assert result['notes'][0] in md
