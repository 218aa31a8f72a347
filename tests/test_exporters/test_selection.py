"""Exports of a selection of a real run: files, links, annotation lines."""
import filecmp
import os
import os.path as osp
import subprocess
import sys

import pytest

from tests.conftest import REPO, make_features_run
from tsneviz.errors import UserError
from tsneviz.exporters.selection import export_selection, read_indices
from tsneviz.rundir import Run

TOOL = osp.join(REPO, 'tools', 'export_selection.py')


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory, digits_root):
    # exports need images and the run's index column, not a model
    return make_features_run(tmp_path_factory.mktemp('selection') / 'work',
                             digits_root)


@pytest.fixture(scope='module')
def chosen(run_dir):
    """The ``index`` column of 7 samples of several classes."""
    run = Run(run_dir)
    positions = [0, 31, 64, 95, 150, 151, 299]
    return {int(run.table['index'][p]): run.image_paths[p]
            for p in positions}


def test_read_indices_csv_and_plain_text(tmp_path):
    csv_file = tmp_path / 'sel.csv'
    csv_file.write_text('img_path,index,gt_class\n'
                        '/a/b.png,17,3\n\n# a comment\n/c/d.png,42,5\n'
                        '/c/d.png,17,5\n')
    assert read_indices(str(csv_file)) == [17, 42]
    txt = tmp_path / 'sel.txt'
    txt.write_text('5\n 3\n\n# note\n5\n8\n')
    assert read_indices(str(txt)) == [5, 3, 8]
    bad = tmp_path / 'bad.csv'
    bad.write_text('img_path,label\n/a.png,3\n')
    with pytest.raises(UserError, match='has no index column'):
        read_indices(str(bad))
    worse = tmp_path / 'worse.txt'
    worse.write_text('5\nseven\n')
    with pytest.raises(UserError, match='line 2'):
        read_indices(str(worse))
    with pytest.raises(UserError, match='indices file not found'):
        read_indices(str(tmp_path / 'missing.txt'))


def test_copy_writes_exactly_the_chosen_files(run_dir, chosen, tmp_path):
    out = str(tmp_path / 'export')
    result = export_selection(run_dir, list(chosen), 'hard', out)
    folder = osp.join(out, 'hard')
    assert result['out'] == folder and result['added'] == 7
    names = sorted(os.listdir(folder))
    assert names == sorted(osp.basename(p) for p in chosen.values())
    for src in chosen.values():
        dst = osp.join(folder, osp.basename(src))
        assert not osp.islink(dst)
        assert filecmp.cmp(src, dst, shallow=False)
    exports = Run(run_dir).manifest['exports']['selection']
    assert exports['options'] == dict(label='hard', mode='copy', n_samples=7)
    assert len(exports['files']) == 7
    # again: nothing duplicated
    again = export_selection(run_dir, list(chosen), 'hard', out)
    assert again['added'] == 0 and again['skipped'] == 7
    assert sorted(os.listdir(folder)) == names


def test_same_file_names_stay_unique(run_dir, chosen, tmp_path):
    out = tmp_path / 'export'
    folder = out / 'hard'
    folder.mkdir(parents=True)
    first = sorted(chosen.values())[0]
    # another image already has this name: keep it, rename the new one
    (folder / osp.basename(first)).write_bytes(b'someone else')
    export_selection(run_dir, list(chosen), 'hard', str(out))
    stem, ext = osp.splitext(osp.basename(first))
    assert (folder / osp.basename(first)).read_bytes() == b'someone else'
    assert filecmp.cmp(first, str(folder / f'{stem}_1{ext}'), shallow=False)
    assert len(os.listdir(folder)) == 8


def test_link_mode_links_to_the_images(run_dir, chosen, tmp_path):
    out = str(tmp_path / 'links')
    result = export_selection(run_dir, list(chosen), 'odd', out, mode='link')
    assert len(result['files']) == 7
    for src in chosen.values():
        dst = osp.join(out, 'odd', osp.basename(src))
        assert osp.islink(dst)
        assert osp.realpath(dst) == osp.realpath(src)


def test_append_writes_loadable_lines(run_dir, chosen, tmp_path, capsys):
    from mmpretrain.datasets import CustomDataset
    run = Run(run_dir)
    prefix = run.manifest['data_prefix']
    first = osp.relpath(chosen[min(chosen)], prefix)
    # the first image of class 0, as a path relative to the data prefix
    assert first == '0/' + sorted(os.listdir(osp.join(prefix, '0')))[0]
    ann = tmp_path / 'train.txt'
    ann.write_text(f'{first} 0\n')  # one of the chosen images is already
    # listed, as class 0
    selection = tmp_path / 'sel.csv'
    selection.write_text('index\n' + '\n'.join(map(str, chosen)) + '\n')
    result = export_selection(run_dir, str(selection), '3', str(ann),
                              mode='append')
    assert result['added'] == 6 and result['skipped'] == 1
    # an image is never listed twice; its existing label is kept, loudly
    assert 'warning: 1 images are already in' in capsys.readouterr().err
    lines = ann.read_text().splitlines()
    assert lines[0] == f'{first} 0' and len(lines) == 7
    ds = CustomDataset(ann_file=str(ann), data_prefix=prefix, pipeline=[])
    assert len(ds) == 7
    loaded = [ds.get_data_info(i) for i in range(7)]
    assert [d['img_path'] for d in loaded] == list(chosen.values())
    assert [d['gt_label'] for d in loaded] == [0] + [3] * 6
    assert all(osp.isfile(d['img_path']) for d in loaded)
    # appending the same selection again adds nothing
    again = export_selection(run_dir, list(chosen), '3', str(ann),
                             mode='append')
    assert again['added'] == 0 and len(ann.read_text().splitlines()) == 7
    # a listed image is recognised under an absolute spelling too
    other = tmp_path / 'other.txt'
    other.write_text(f'{chosen[max(chosen)]} 3\n')
    result = export_selection(run_dir, list(chosen), '3', str(other),
                              mode='append')
    assert result['added'] == 6 and len(other.read_text().splitlines()) == 7


@pytest.mark.parametrize('indices, label, mode, message', [
    ([999999, 123456, 0], 'x', 'copy', '2 of the indices are not '
     'samples of the run: 999999, 123456'),
    ([], 'x', 'copy', 'the selection is empty'),
    ([0], 'hard_3', 'append', "label 'hard_3' is not a class of the run"),
    ([0], '../up', 'copy', 'cannot be a folder name'),
    ([0], 'x', 'move', 'unknown mode'),
])
def test_bad_selections_are_user_errors(run_dir, tmp_path, indices, label,
                                        mode, message):
    out = str(tmp_path / ('ann.txt' if mode == 'append' else 'out'))
    with pytest.raises(UserError, match=message) as err:
        export_selection(run_dir, indices, label, out, mode=mode)
    assert '\n' not in str(err.value)
    assert not osp.exists(out)


def test_run_without_manifest(tmp_path):
    with pytest.raises(UserError, match='has no run.json'):
        export_selection(str(tmp_path), [0], 'x', str(tmp_path / 'o'))


def test_cli_exports_and_fails_in_one_line(run_dir, chosen, tmp_path):
    selection = tmp_path / 'sel.txt'
    selection.write_text('\n'.join(map(str, chosen)) + '\n')
    out = str(tmp_path / 'cli')
    ok = subprocess.run([sys.executable, TOOL, run_dir, '--indices',
                         str(selection), '--label', 'picked', '--out', out],
                        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert '7 images added' in ok.stdout
    assert len(os.listdir(osp.join(out, 'picked'))) == 7
    selection.write_text('999999\n')
    bad = subprocess.run([sys.executable, TOOL, run_dir, '--indices',
                          str(selection), '--label', 'picked', '--out', out],
                         capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith('error: 1 of the indices are not')
    assert 'Traceback' not in bad.stderr
