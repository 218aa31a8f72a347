"""tools/place.py as a user runs it: from another folder, as a subprocess.

What placement does is tested with its module
(tests/test_analysis/test_placement.py); here the script's arguments,
output, refreshed explorer and one-line errors.
"""
import os
import os.path as osp
import subprocess
import sys

import numpy as np

from tests.conftest import REPO, make_features_run

TOOL = osp.join(REPO, 'tools', 'place.py')


def _place(*args, cwd):
    return subprocess.run([sys.executable, TOOL, *map(str, args)],
                          capture_output=True, text=True, cwd=str(cwd),
                          timeout=600)


def test_place_features_and_refresh(tmp_path, digits_root):
    from tsneviz.explorer import write_explorer
    from tsneviz.rundir import Run, read_table

    run_dir = make_features_run(tmp_path / 'work', digits_root,
                                per_class=10, method='pca')
    write_explorer(run_dir)
    run = Run(run_dir)
    np.save(tmp_path / 'rows.npy', run.features()[:12])
    (tmp_path / 'labels.txt').write_text(
        '\n'.join(run.label_space.dataset_name(v)
                  for v in run.labels[:12]) + '\n')
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    done = _place(osp.relpath(run_dir, elsewhere), '--features',
                  '../rows.npy', '--labels', '../labels.txt', '--name',
                  'rows', '--k', 4, cwd=elsewhere)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith('12 placed on the map (PCA')
    assert lines[-1].endswith(osp.join('placed', 'rows.csv'))
    table = read_table(osp.join(run_dir, 'placed', 'rows.csv'))
    assert [len(c.split()) for c in table['neighbors']] == [4] * 12
    assert table['gt_label'] == [str(int(v)) for v in run.labels[:12]]
    # the explorer the run had now shows the layer
    page = open(osp.join(run_dir, 'index.html'), encoding='utf-8').read()
    assert 'tsneviz-placed-0' in page and '"name":"rows"' in page


def test_place_errors_are_one_line(tmp_path, features_run):
    def refused(*args):
        done = _place(*args, cwd=tmp_path)
        assert done.returncode == 2, done.stderr[-2000:]
        assert 'Traceback' not in done.stderr
        last = done.stderr.strip().splitlines()
        assert len(last) == 1 and last[0].startswith('error: '), last
        return last[0]

    assert 'run directory not found' in refused(
        tmp_path / 'nope', '--features', 'x.npy')
    np.save(tmp_path / 'narrow.npy', np.zeros((2, 5), np.float32))
    assert '5 columns' in refused(features_run, '--features',
                                  tmp_path / 'narrow.npy')
    (tmp_path / 'empty').mkdir()
    assert 'no images found' in refused(features_run, '--images',
                                        tmp_path / 'empty')
    assert 'labels file' in refused(features_run, '--features',
                                    tmp_path / 'narrow.npy', '--labels')
    assert not os.path.exists(osp.join(features_run, 'placed'))
