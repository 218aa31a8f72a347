"""The per-sample table of a run as Parquet or CSV, with typed columns.

``samples.csv`` is text; these exports give each column the type of the
samples.csv schema (:data:`tsneviz.rundir.SAMPLE_COLUMNS`): ``img_path``,
``gt_class`` and ``pred_class`` are strings (class names may look like
numbers), an int column is int64 (nullable ``Int64`` when it has empty
cells, e.g. unclustered samples), a float column float64 (empty cells are
NaN); a column the schema does not know is int64 when it holds whole
numbers, float64 when it holds numbers, else strings. Rows stay in run
order, the order of ``feat_<key>.npy``.

With ``features=True`` the feature vectors come along: one
``fixed_size_list<float32>`` column ``<key>`` per key in Parquet, and
columns ``<key>_0 .. <key>_<C-1>`` in CSV.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from tsneviz.errors import UserError
from tsneviz.exporters.base import BaseExporter
from tsneviz.registry import EXPORTERS
from tsneviz.rundir import (
    COORD_AXES,
    SAMPLES_EXPORT,
    SAMPLES_PARQUET,
    TABLE,
    TEXT,
    Run,
    atomic_write,
    column_kind,
    coord_column,
    nullable_ints,
    typed_column,
    write_table,
)


def typed_columns(table: Dict[str, List[str]],
                  keys: Optional[Sequence[str]] = None
                  ) -> Dict[str, np.ndarray]:
    """Columns of strings (as read from ``samples.csv``) with their types.

    The kinds are the samples.csv schema's
    (:func:`tsneviz.rundir.column_kind`).

    Args:
        table (dict[str, list[str]]): Columns of text, as
            :meth:`~tsneviz.rundir.Run.text_table` returns them.
        keys (Sequence[str], optional): The run's feature keys (their
            coordinate columns are float). Defaults to None.

    Returns:
        dict[str, np.ndarray]: int64, float64 or object (str) arrays; an
        integer column with empty cells is a float64 array marked in
        :func:`~tsneviz.rundir.nullable_ints`.

    Examples:
        >>> cols = typed_columns({'gt_label': ['1', '2'],
        ...                       'gt_class': ['1', '2'],
        ...                       'loss': ['0.5', '']})
        >>> [cols[k].dtype.kind for k in ('gt_label', 'gt_class', 'loss')]
        ['i', 'O', 'f']
    """
    return {name: typed_column(name, values, keys, exact=True)
            for name, values in table.items()}


def run_columns(run: Run, key: Optional[str]) -> Dict[str, List[str]]:
    """``samples.csv`` as text, with only ``key``'s coordinates if given."""
    table = run.text_table()
    if key is None:
        return table
    others = {coord_column(k, a) for k in run.keys if k != key
              for a in COORD_AXES}
    return {name: values for name, values in table.items()
            if name not in others}


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


@EXPORTERS.register_module(name='parquet')
class ParquetExporter(_TableExporter):
    """Write the per-sample table as Parquet (needs pandas and pyarrow).

    Examples:
        >>> ParquetExporter().export('work_dirs/digits/tsne_20261123_144017')
        ['/.../tsne_20261123_144017/samples.parquet']
    """

    name = 'parquet'

    def default_out(self, run: Run, key: Optional[str]) -> str:
        return osp.join(run.path, SAMPLES_PARQUET)

    def write(self, run: Run, out: str, key: Optional[str]) -> List[str]:
        pd, pa, pq = _parquet_libs()
        self._refuse_run_table(run, out)
        text = run_columns(run, key)
        frame = pd.DataFrame(typed_columns(text, run.keys))
        for name in nullable_ints(text, run.keys):
            frame[name] = frame[name].astype('Int64')
        for name, values in text.items():
            if column_kind(name, run.keys, values) == TEXT:
                frame[name] = frame[name].astype(str)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.options['features']:
            for k in ([key] if key else run.keys):
                feats = np.ascontiguousarray(run.features(k),
                                             dtype=np.float32)
                table = table.append_column(
                    k, pa.FixedSizeListArray.from_arrays(
                        pa.array(feats.ravel()), feats.shape[1]))
        return [atomic_write(out, lambda f: pq.write_table(table, f))]


@EXPORTERS.register_module(name='csv')
class CsvExporter(_TableExporter):
    """Write the per-sample table as CSV, optionally with the features.

    Examples:
        >>> CsvExporter(features=True).export(
        ...     'work_dirs/digits/tsne_20261123_144017', key='feat_3')
        ['/.../tsne_20261123_144017/samples_export.csv']
    """

    name = 'csv'

    def default_out(self, run: Run, key: Optional[str]) -> str:
        return osp.join(run.path, SAMPLES_EXPORT)

    def write(self, run: Run, out: str, key: Optional[str]) -> List[str]:
        self._refuse_run_table(run, out)
        columns = dict(run_columns(run, key))
        if self.options['features']:
            for k in ([key] if key else run.keys):
                feats = run.features(k)
                for c in range(feats.shape[1]):
                    columns[f'{k}_{c}'] = feats[:, c].astype(float)
        return [write_table(out, columns)]


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
