"""Parquet and CSV exports of the per-sample table, read back by pandas."""
import csv
import math
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, make_demo_run
from tsneviz.errors import UserError
from tsneviz.exporters import export_csv, export_parquet, export_run
from tsneviz.exporters.table import typed_columns
from tsneviz.rundir import Run, add_columns, read_table

pd = pytest.importorskip('pandas')
pytest.importorskip('pyarrow')


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory, digits_options):
    work_dir = str(tmp_path_factory.mktemp('table') / 'work')
    return make_demo_run(work_dir, digits_options, max_num_samples=10,
                         tsne=dict(perplexity=10.0, n_iter=400))


def _as_csv_text(value) -> str:
    """A pandas cell as samples.csv writes it (repr of floats, NaN empty)."""
    if value is None or value is pd.NA or (
            isinstance(value, float) and math.isnan(value)):
        return ''
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def test_parquet_round_trips_samples_csv(run_dir):
    path, = export_parquet(run_dir)
    assert path == osp.join(run_dir, 'samples.parquet')
    frame = pd.read_parquet(path)
    table = read_table(osp.join(run_dir, 'samples.csv'))
    assert list(frame.columns) == list(table)
    assert len(frame) == len(table['index'])
    for name, values in table.items():
        assert [_as_csv_text(v) for v in frame[name]] == values, name
    # typed: class names stay text even for the digits' '0'..'9'
    assert frame['gt_label'].dtype == np.int64
    assert frame['index'].dtype == np.int64
    assert frame['loss'].dtype == np.float64
    assert pd.api.types.is_string_dtype(frame['gt_class'])
    assert pd.api.types.is_string_dtype(frame['img_path'])


def test_parquet_with_features_and_nullable_clusters(run_dir, tmp_path):
    run = Run(run_dir)
    clusters = [str(i % 3) for i in range(len(run))]
    clusters[0] = ''  # an unclustered sample
    add_columns(run_dir, {'cluster': clusters})
    path, = export_parquet(run_dir, out=str(tmp_path / 'f.parquet'),
                           key='feat_3', features=True)
    frame = pd.read_parquet(path)
    assert str(frame['cluster'].dtype) == 'Int64'
    assert frame['cluster'].isna().tolist() == [c == '' for c in clusters]
    feats = np.stack(frame['feat_3'].to_numpy())
    np.testing.assert_array_equal(feats, run.features('feat_3'))
    assert feats.dtype == np.float32
    entry = Run(run_dir).manifest['exports']['parquet']
    assert entry['key'] == 'feat_3' and entry['options']['features'] is True
    assert entry['files'] == [path]  # outside the run: absolute


def test_csv_export_with_features(run_dir, tmp_path):
    path, = export_csv(run_dir, out=str(tmp_path / 't.csv'), features=True)
    frame = pd.read_csv(path)
    feats = Run(run_dir).features('feat_3')
    np.testing.assert_array_equal(
        frame[[f'feat_3_{i}' for i in range(feats.shape[1])]].to_numpy(
            dtype=np.float32), feats)
    table = read_table(osp.join(run_dir, 'samples.csv'))
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    assert [r['img_path'] for r in rows] == table['img_path']
    assert [r['loss'] for r in rows] == table['loss']


def test_default_csv_is_listed_and_never_the_run_table(run_dir):
    path, = export_run(run_dir, 'csv')
    assert path == osp.join(run_dir, 'samples_export.csv')
    assert 'samples_export.csv' in Run(run_dir).manifest['outputs']
    with pytest.raises(UserError, match="run's own table"):
        export_csv(run_dir, out=osp.join(run_dir, 'samples.csv'))


def test_typed_columns_keep_class_names_text():
    cols = typed_columns({'gt_class': ['1', '2'], 'gt_label': ['1', '2'],
                          'loss': ['0.5', ''], 'note': ['a', '1']})
    assert cols['gt_class'].dtype == object
    assert cols['gt_label'].dtype == np.int64
    assert cols['loss'].dtype == np.float64 and np.isnan(cols['loss'][1])
    assert cols['note'].dtype == object


def test_missing_pyarrow_names_the_install(run_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, 'pyarrow', None)
    monkeypatch.setitem(sys.modules, 'pyarrow.parquet', None)
    with pytest.raises(UserError, match='pip install pandas pyarrow'):
        export_parquet(run_dir)


@pytest.mark.slow
def test_cli_parquet_and_unknown_key(run_dir, tmp_path):
    script = osp.join(REPO, 'tools', 'export.py')
    out = str(tmp_path / 'cli.parquet')
    ok = subprocess.run([sys.executable, script, run_dir, '--format',
                         'parquet', '--out', out, '--key', 'feat_3'],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == out and len(pd.read_parquet(out)) == \
        len(Run(run_dir))
    bad = subprocess.run([sys.executable, script, run_dir, '--format',
                          'parquet', '--key', 'feat_0'],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.count('\n') == 1 and 'Traceback' not in bad.stderr
    assert "no feature 'feat_0'" in bad.stderr


def _export_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'export_tool', osp.join(REPO, 'tools', 'export.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_formats_export_run_and_the_cli_read_the_registry(run_dir, tmp_path):
    from tsneviz.exporters import formats
    from tsneviz.exporters.base import BaseExporter
    from tsneviz.registry import EXPORTERS

    # run exporters only: selection and splits are exporters of another kind
    assert formats() == ['bulk', 'csv', 'parquet', 'projector']
    assert {'selection', 'splits'} <= set(EXPORTERS.module_dict)

    @EXPORTERS.register_module(name='lines')
    class LinesExporter(BaseExporter):
        name = 'lines'
        flags = ('features',)
        defaults = dict(features=False)

        def default_out(self, run, key):
            return osp.join(run.path, 'lines.txt')

        def write(self, run, out, key):
            with open(out, 'w') as f:
                f.write(f'{len(run)}\n')
            return [out]

    tool = _export_tool()
    try:
        assert formats() == ['bulk', 'csv', 'lines', 'parquet', 'projector']
        path, = export_run(run_dir, 'lines', features=True)
        assert open(path).read() == f'{len(Run(run_dir))}\n'
        entry = Run(run_dir).manifest['exports']['lines']
        assert entry['options'] == {'features': True}
        args = tool.parse_args([run_dir, '--format', 'lines', '--features'])
        assert tool.options_of(args) == {'features': True}
        args = tool.parse_args([run_dir, '--format', 'csv', '--color', 'x'])
        with pytest.raises(UserError, match='--format bulk only, not csv'):
            tool.options_of(args)
    finally:
        EXPORTERS.module_dict.pop('lines')
    assert 'lines' not in formats()
    with pytest.raises(UserError, match="unknown export format 'lines'; "
                       'choose one of bulk, csv, parquet, projector'):
        export_run(run_dir, 'lines')
