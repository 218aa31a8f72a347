"""The Bulk export, read by bulk 0.4.2's own loader in its own environment.

bulk pins ``numpy<2`` and ``bokeh<3``, so it cannot live in the project's
environment. A separate virtual environment with the packages of
``requirements/bulk-check.txt`` is made by ``make bulk-venv`` (which ``make
test`` runs) at ``.venv-bulk``, or given as ``$TSNEVIZ_BULK_VENV``.
"""
import csv
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, make_demo_run
from tsneviz.errors import UserError
from tsneviz.exporters import export_bulk
from tsneviz.exporters.bulk import color_column
from tsneviz.rundir import Run, read_table

# Runs inside the bulk environment: bulk's own reader and its image app on
# each CSV given; prints what they made of it as JSON.
CHECK = r'''
import json, sys
from bokeh.document import Document
from bulk._bokeh_utils import read_file
from bulk.cli.image import bulk_images

report = {}
for path in sys.argv[1:]:
    df, colormap, orig_cols = read_file(path)
    doc = Document()
    bulk_images(path)(doc)  # the layout `python -m bulk image` serves
    mapper = colormap['transform'] if colormap else None
    report[path] = dict(
        columns=list(orig_cols), rows=len(df),
        x=df['x'].tolist(), y=df['y'].tolist(),
        paths=df['path'].tolist(),
        images=int(df['image'].str.startswith('<img').sum()),
        color_dtype=str(df['color'].dtype) if 'color' in df else None,
        mapper=type(mapper).__name__ if mapper else None,
        factors=list(getattr(mapper, 'factors', None) or []),
        roots=len(doc.roots))
print(json.dumps(report))
'''


def _venv_python(venv: str) -> str:
    return osp.join(venv, 'bin', 'python')


@pytest.fixture(scope='session')
def bulk_python():
    """Python of the environment with bulk 0.4.2 that ``make bulk-venv``
    (run by ``make test``) builds; tests install nothing themselves."""
    venv = os.environ.get('TSNEVIZ_BULK_VENV') or osp.join(REPO, '.venv-bulk')
    python = _venv_python(venv)
    if not osp.isfile(osp.join(venv, '.ready')) or not osp.exists(python):
        pytest.fail(f'no bulk environment at {venv}: run `make bulk-venv` '
                    '(it installs requirements/bulk-check.txt)')
    return python


def read_with_bulk(bulk_python, *paths) -> dict:
    done = subprocess.run([bulk_python, '-c', CHECK, *paths],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory, digits_options):
    work_dir = str(tmp_path_factory.mktemp('bulk') / 'work')
    return make_demo_run(work_dir, digits_options, max_num_samples=12,
                         tsne=dict(perplexity=10.0, n_iter=400))


def test_bulk_reads_our_csv_with_every_colour(run_dir, tmp_path,
                                              bulk_python):
    run = Run(run_dir)
    table = read_table(osp.join(run_dir, 'samples.csv'))
    default, = export_bulk(run_dir)
    assert default == osp.join(run_dir, 'bulk_feat_3.csv')
    by_pred, = export_bulk(run_dir, out=str(tmp_path / 'pred.csv'),
                           color='prediction')
    by_loss, = export_bulk(run_dir, out=str(tmp_path / 'loss.csv'),
                           color='loss')
    by_ok, = export_bulk(run_dir, out=str(tmp_path / 'ok.csv'),
                         color='correct')
    report = read_with_bulk(bulk_python, default, by_pred, by_loss, by_ok)

    got = report[default]
    n = len(run)
    assert got['rows'] == n and got['roots'] == 1
    assert got['columns'][:4] == ['path', 'x', 'y', 'color']
    assert {'label', 'prediction', 'correct', 'loss', 'score',
            'index'} <= set(got['columns'])
    # every image was found and encoded by bulk, in sample order
    assert got['images'] == n
    assert got['paths'] == [osp.abspath(p) for p in run.image_paths]
    coords = run.coords('feat_3')
    np.testing.assert_allclose(got['x'], coords[:, 0], rtol=1e-6)
    np.testing.assert_allclose(got['y'], coords[:, 1], rtol=1e-6)
    # digit class names stay categories (a palette per class, not a ramp)
    assert got['mapper'] == 'CategoricalColorMapper'
    assert sorted(got['factors']) == sorted(
        f'class {c}' for c in set(table['gt_class']))

    assert report[by_pred]['mapper'] == 'CategoricalColorMapper'
    assert set(report[by_pred]['factors']) == {
        f'pred {c}' for c in table['pred_class']}
    assert report[by_loss]['mapper'] == 'LinearColorMapper'
    assert report[by_loss]['color_dtype'] == 'float64'
    ok_factors = set(report[by_ok]['factors']) - {''}
    assert ok_factors <= {'correct', 'wrong'} and 'correct' in ok_factors


def test_csv_rows_match_the_run(run_dir):
    path, = export_bulk(run_dir)
    table = read_table(osp.join(run_dir, 'samples.csv'))
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    assert [r['label'] for r in rows] == table['gt_class']
    assert [r['index'] for r in rows] == table['index']
    assert [r['color'] for r in rows] == [f'class {c}'
                                          for c in table['gt_class']]
    entry = Run(run_dir).manifest['exports']['bulk']
    assert entry['files'] == ['bulk_feat_3.csv']
    assert entry['options'] == {'color': 'label'}
    assert 'bulk_feat_3.csv' in Run(run_dir).manifest['outputs']


def test_colour_limits_are_user_errors(run_dir):
    with pytest.raises(UserError, match='no clusters'):
        export_bulk(run_dir, color='cluster')
    with pytest.raises(UserError, match="color='red'"):
        export_bulk(run_dir, color='red')
    many = {'label': [f'n{i}' for i in range(11)]}
    with pytest.raises(UserError, match='at most 10 categories'):
        color_column(many, 'label')
    assert color_column({'label': ['a', 'a']}, 'label') is None
    assert color_column({'label': ['cat', 'dog']}, 'label') == ['cat', 'dog']


@pytest.mark.slow
def test_cli_colour_and_errors(run_dir, tmp_path):
    script = osp.join(REPO, 'tools', 'export.py')
    out = str(tmp_path / 'b.csv')
    ok = subprocess.run([sys.executable, script, run_dir, '--format', 'bulk',
                         '--out', out, '--color', 'prediction'],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == out
    with open(out, newline='') as f:
        assert next(csv.DictReader(f))['color'].startswith('pred ')

    for args, message in (
            (['--format', 'bulk', '--key', 'feat_7'], "no feature 'feat_7'"),
            (['--format', 'bulk', '--color', 'cluster'], 'no clusters'),
            (['--format', 'csv', '--color', 'label'], 'applies to --format')):
        bad = subprocess.run([sys.executable, script, run_dir, *args],
                             capture_output=True, text=True, timeout=300)
        assert bad.returncode == 2, bad.stderr
        assert bad.stderr.count('\n') == 1 and 'Traceback' not in bad.stderr
        assert message in bad.stderr

    missing = subprocess.run(
        [sys.executable, script, str(tmp_path), '--format', 'bulk'],
        capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2
    assert 'has no run.json' in missing.stderr
    assert missing.stderr.count('\n') == 1
