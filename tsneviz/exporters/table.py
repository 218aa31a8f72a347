"""The per-sample table of a run as Parquet or CSV, with typed columns.

``samples.csv`` is text; these exports give each column its type:
``img_path``, ``gt_class`` and ``pred_class`` are strings (class names may
look like numbers), a column of whole numbers is int64 (nullable ``Int64``
when it has empty cells, e.g. unclustered samples), any other numeric
column float64 (empty cells are NaN), the rest strings. Rows stay in run
order, the order of ``feat_<key>.npy``.

With ``features=True`` the feature vectors come along: one
``fixed_size_list<float32>`` column ``<key>`` per key in Parquet, and
columns ``<key>_0 .. <key>_<C-1>`` in CSV.
"""
import os.path as osp
import re
from typing import Dict, List, Optional

import numpy as np

from tsneviz.errors import UserError
from tsneviz.exporters.base import TEXT_COLUMNS, BaseExporter, run_exporter
from tsneviz.rundir import TABLE, Run, _atomic, read_table, write_table

_INT = re.compile(r'-?\d+\Z')


def typed_columns(table: Dict[str, List[str]]) -> Dict[str, np.ndarray]:
    """Columns of strings (as read from ``samples.csv``) with their types.

    Args:
        table (dict[str, list[str]]): Columns of text, as
            :func:`~tsneviz.rundir.read_table` returns them.

    Returns:
        dict[str, np.ndarray]: int64, float64 or object (str) arrays; an
        integer column with empty cells is a float64 array marked in
        :func:`nullable_ints`.

    Examples:
        >>> cols = typed_columns({'gt_label': ['1', '2'],
        ...                       'gt_class': ['1', '2'],
        ...                       'loss': ['0.5', '']})
        >>> [cols[k].dtype.kind for k in ('gt_label', 'gt_class', 'loss')]
        ['i', 'O', 'f']
    """
    typed = {}
    for name, values in table.items():
        typed[name] = _typed(name, values)
    return typed


def _typed(name: str, values: List[str]) -> np.ndarray:
    if name in TEXT_COLUMNS:
        return np.array(values, dtype=object)
    filled = [v for v in values if v != '']
    if filled and all(_INT.match(v) for v in filled):
        if len(filled) == len(values):
            return np.array([int(v) for v in values], dtype=np.int64)
        return np.array([float(v) if v != '' else np.nan for v in values])
    try:
        return np.array([float(v) if v != '' else np.nan for v in values])
    except ValueError:
        return np.array(values, dtype=object)


def nullable_ints(table: Dict[str, List[str]]) -> List[str]:
    """Names of whole-number columns that have empty cells."""
    return [name for name, values in table.items()
            if name not in TEXT_COLUMNS and '' in values
            and any(v != '' for v in values)
            and all(_INT.match(v) for v in values if v != '')]


def run_columns(run: Run, key: Optional[str]) -> Dict[str, List[str]]:
    """``samples.csv`` as text, with only ``key``'s coordinates if given."""
    table = read_table(osp.join(run.path, TABLE))
    if key is None:
        return table
    others = [k for k in run.keys if k != key]
    return {name: values for name, values in table.items()
            if not any(name in (f'{k}_x', f'{k}_y', f'{k}_z')
                       for k in others)}


class _TableExporter(BaseExporter):
    """Shared options of the table exports.

    Args:
        features (bool): Add the feature vectors. Defaults to False.
    """

    flags = ('features',)
    defaults = dict(features=False)

    def _refuse_run_table(self, run: Run, out: str) -> None:
        if osp.realpath(out) == osp.realpath(osp.join(run.path, TABLE)):
            raise UserError(f'{out} is the run\'s own table; choose another '
                            '--out')


class ParquetExporter(_TableExporter):
    """Write the per-sample table as Parquet (needs pandas and pyarrow).

    Examples:
        >>> ParquetExporter().export('work_dirs/digits/tsne_20261123_144017')
        ['/.../tsne_20261123_144017/samples.parquet']
    """

    name = 'parquet'

    def default_out(self, run: Run, key: Optional[str]) -> str:
        return osp.join(run.path, 'samples.parquet')

    def write(self, run: Run, out: str, key: Optional[str]) -> List[str]:
        pd, pa, pq = _parquet_libs()
        self._refuse_run_table(run, out)
        text = run_columns(run, key)
        frame = pd.DataFrame(typed_columns(text))
        for name in nullable_ints(text):
            frame[name] = frame[name].astype('Int64')
        for name in TEXT_COLUMNS:
            if name in frame:
                frame[name] = frame[name].astype(str)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.options['features']:
            for k in ([key] if key else run.keys):
                feats = np.ascontiguousarray(run.features(k),
                                             dtype=np.float32)
                table = table.append_column(
                    k, pa.FixedSizeListArray.from_arrays(
                        pa.array(feats.ravel()), feats.shape[1]))
        return [_atomic(out, lambda f: pq.write_table(table, f))]


class CsvExporter(_TableExporter):
    """Write the per-sample table as CSV, optionally with the features.

    Examples:
        >>> CsvExporter(features=True).export(
        ...     'work_dirs/digits/tsne_20261123_144017', key='feat_3')
        ['/.../tsne_20261123_144017/samples_export.csv']
    """

    name = 'csv'

    def default_out(self, run: Run, key: Optional[str]) -> str:
        return osp.join(run.path, 'samples_export.csv')

    def write(self, run: Run, out: str, key: Optional[str]) -> List[str]:
        self._refuse_run_table(run, out)
        columns = dict(run_columns(run, key))
        if self.options['features']:
            for k in ([key] if key else run.keys):
                feats = run.features(k)
                for c in range(feats.shape[1]):
                    columns[f'{k}_{c}'] = feats[:, c].astype(float)
        return [write_table(out, columns)]


@run_exporter('parquet')
def export_parquet(run_dir: str, out: Optional[str] = None,
                   key: Optional[str] = None, **options) -> List[str]:
    """Export the per-sample table as Parquet.

    Args:
        run_dir (str): A complete run directory.
        out (str, optional): The file to write. Defaults to
            ``<run_dir>/samples.parquet``.
        key (str, optional): Keep only this key's coordinates (and
            features). Defaults to None (every key).
        **options: ``features`` (bool): add the feature vectors as
            fixed-size list columns. Defaults to False.

    Returns:
        list[str]: The Parquet path.

    Examples:
        >>> import pandas as pd
        >>> path, = export_parquet('work_dirs/digits/tsne_20261123_144017')
        >>> pd.read_parquet(path).dtypes['gt_label']
        dtype('int64')
    """
    return ParquetExporter(**options).export(run_dir, out, key)


@run_exporter('csv')
def export_csv(run_dir: str, out: Optional[str] = None,
               key: Optional[str] = None, **options) -> List[str]:
    """Export the per-sample table as CSV.

    Args:
        run_dir (str): A complete run directory.
        out (str, optional): The file to write (not the run's own
            ``samples.csv``). Defaults to ``<run_dir>/samples_export.csv``.
        key (str, optional): Keep only this key's coordinates (and
            features). Defaults to None (every key).
        **options: ``features`` (bool): add ``<key>_<i>`` feature columns.
            Defaults to False.

    Returns:
        list[str]: The CSV path.

    Examples:
        >>> export_csv('work_dirs/digits/tsne_20261123_144017',
        ...            out='digits.csv', features=True)
        ['/.../digits.csv']
    """
    return CsvExporter(**options).export(run_dir, out, key)


def _parquet_libs():
    """pandas, pyarrow and pyarrow.parquet, or a UserError saying how."""
    try:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise UserError(f'Parquet export needs pandas and pyarrow ({err}); '
                        'install them with: pip install pandas pyarrow'
                        ) from None
    return pd, pa, pq
