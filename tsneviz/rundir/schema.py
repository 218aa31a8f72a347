"""The schema of ``samples.csv`` and ``clusters.csv``.

``samples.csv`` is text, one row per sample; these kinds say what each
column holds, for every reader (:attr:`Run.table`, the typed exports) and
for the writer (:func:`write_samples`).
"""
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from tsneviz.rundir.files import TABLE
from tsneviz.rundir.io import _cell, read_table, write_table

TEXT, INT, FLOAT, BOOL = 'text', 'int', 'float', 'bool'
#: Known columns of ``samples.csv`` and their kinds. Class names are text
#: even when they look like numbers (the digits' '0'..'9'), and so are
#: image paths (a bare '17.png' is no number either).
SAMPLE_COLUMNS = {
    'index': INT,       # the sample's index in the dataset
    'img_path': TEXT,
    'gt_label': INT,    # ground truth, an id of the dataset's classes
    'gt_class': TEXT,
    'pred_label': INT,  # prediction, an id of the model's classes
    'pred_class': TEXT,
    'score': FLOAT,
    'entropy': FLOAT,
    'loss': FLOAT,
    'cluster': INT,     # by tools/cluster.py; -1 is HDBSCAN noise
    # by tools/label_issues.py: in [0, 1], lower = more likely mislabelled
    'label_quality': FLOAT,
    'label_issue': BOOL,  # a suspected label error
    # by tools/reliability.py: share of the k feature-space neighbours that
    # are map neighbours too, in [0, 1]
    'map_reliability': FLOAT,
}
#: The column of each sample's cluster id (:data:`CLUSTERS` summarises).
CLUSTER_COLUMN = 'cluster'
#: Columns of ``clusters.csv``, in order, and their kinds (meanings in
#: :mod:`tsneviz.analysis.summary`).
CLUSTER_SCHEMA = {
    'rank': INT, 'cluster': INT, 'size': INT, 'purity': FLOAT,
    'dominant_class': TEXT, 'dominant_share': FLOAT, 'classes': TEXT,
    'error_rate': FLOAT, 'mean_loss': FLOAT, 'top_confusions': TEXT,
}
CLUSTER_COLUMNS = tuple(CLUSTER_SCHEMA)
#: Per feature key, one layout coordinate column per axis: ``<key>_x``...
COORD_AXES = 'xyz'
# Columns every run's samples.csv has, whatever made the run.
TABLE_COLUMNS = ('gt_label', )
# Columns that stay text even when every value looks like a number.
TEXT_COLUMNS = tuple(n for n, k in SAMPLE_COLUMNS.items() if k == TEXT)
_TRUE, _FALSE = ('true', 'True', '1'), ('false', 'False', '0')


def coord_column(key: str, axis: str) -> str:
    """``<key>_<axis>``: one axis (``x``, ``y``, ``z``) of a key's layout."""
    return f'{key}_{axis}'


def flat_view_note(n_axes: int) -> str:
    """What a flat (x, y) view shows of a map with ``n_axes`` axes.

    The explorer, the reliability figure and the placement plot are 2-D:
    a 3-D map is drawn by its first two axes, and the page or figure says
    so with these words, so that nobody reads them as the whole map.

    Args:
        n_axes (int): The map's axes (its coordinates' columns).

    Returns:
        str: ``''`` when the view is the whole map (2-D), else e.g.
        ``'axes 1-2 of a 3-D map'``.

    Examples:
        >>> flat_view_note(3)
        'axes 1-2 of a 3-D map'
        >>> flat_view_note(2)
        ''
    """
    return '' if n_axes <= 2 else f'axes 1-2 of a {int(n_axes)}-D map'


def column_kind(name: str, keys: Optional[Sequence[str]] = None,
                values: Optional[Sequence[str]] = None) -> str:
    """The kind of a ``samples.csv`` column: int, float, text or bool.

    Args:
        name (str): The column.
        keys (Sequence[str], optional): The run's feature keys, whose
            ``<key>_x/_y/_z`` columns are float. Defaults to None.
        values (Sequence[str], optional): The column's text, to infer the
            kind of a column the schema does not know (int when every
            filled cell is a whole number, float when every one is a
            number, text otherwise). Defaults to None (text).

    Returns:
        str: :data:`INT`, :data:`FLOAT`, :data:`TEXT` or :data:`BOOL`.

    Examples:
        >>> column_kind('gt_class', values=['0', '1'])
        'text'
        >>> column_kind('feat_3_x', keys=['feat_3'])
        'float'
        >>> column_kind('note', values=['2', ''])
        'int'
    """
    if name in SAMPLE_COLUMNS:
        return SAMPLE_COLUMNS[name]
    if keys and any(name == coord_column(k, a) for k in keys
                    for a in COORD_AXES):
        return FLOAT
    filled = [v for v in values or () if v != '']
    if not filled:
        return TEXT if values is None else FLOAT
    if all(_is_int(v) for v in filled):
        return INT
    try:
        [float(v) for v in filled]
    except ValueError:
        return TEXT
    return FLOAT


def _is_int(text: str) -> bool:
    digits = text[1:] if text[:1] == '-' else text
    return digits.isdigit() and digits.isascii()


def typed_column(name: str, values: Sequence[str],
                 keys: Optional[Sequence[str]] = None,
                 exact: bool = False) -> np.ndarray:
    """A ``samples.csv`` column of text as an array of its kind.

    Args:
        name (str): The column.
        values (Sequence[str]): Its cells, as :func:`read_table` gives them.
        keys (Sequence[str], optional): See :func:`column_kind`.
        exact (bool): Give a whole int column as int64 (an int column with
            empty cells stays float64 with NaN) and a bool column as bool.
            Defaults to False: every number as float64 with NaN for empty
            cells, the form :attr:`Run.table` has, so that columns mix in
            arithmetic without casts.

    Returns:
        np.ndarray: float64, int64, bool or object (str) values; a numeric
        column that does not parse stays text.

    Examples:
        >>> typed_column('gt_label', ['1', '2'], exact=True).dtype
        dtype('int64')
        >>> typed_column('gt_class', ['1', '2']).dtype
        dtype('O')
    """
    values = list(values)
    kind = column_kind(name, keys, values)
    if kind == TEXT:
        return np.array(values, dtype=object)
    if kind == BOOL and exact and '' not in values and \
            all(v in _TRUE + _FALSE for v in values):
        return np.array([v in _TRUE for v in values], dtype=bool)
    if kind == BOOL:
        return np.array([np.nan if v == '' else float(v in _TRUE)
                         for v in values])
    if kind == INT and exact and '' not in values and \
            all(_is_int(v) for v in values):
        return np.array([int(v) for v in values], dtype=np.int64)
    try:
        return np.array([float(v) if v != '' else np.nan for v in values],
                        dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=object)


def nullable_ints(table: Dict[str, Sequence[str]],
                  keys: Optional[Sequence[str]] = None) -> List[str]:
    """Int columns of a text table that have empty cells (and others)."""
    return [name for name, values in table.items()
            if column_kind(name, keys, values) == INT and '' in values
            and any(v != '' for v in values)]


def sample_cell(name: str, value, keys: Optional[Sequence[str]] = None):
    """One value as ``samples.csv`` writes it in column ``name``.

    An int column gets whole numbers even from a float array (cluster ids
    kept as floats next to NaN), so it reads back as the same ints.
    """
    if column_kind(name, keys) == INT and \
            isinstance(value, (float, np.floating)) and \
            not np.isnan(value) and float(value).is_integer():
        return int(value)
    return _cell(value)


#######################################################################


def write_samples(run_dir: str, columns: Dict[str, Iterable],
                  keys: Optional[Sequence[str]] = None) -> str:
    """Write ``samples.csv`` of ``run_dir`` by the samples.csv schema.

    Args:
        run_dir (str): The run directory.
        columns (dict[str, Iterable]): Column name to one value per sample.
        keys (Sequence[str], optional): The feature keys (whose coordinate
            columns are float). Defaults to None.

    Returns:
        str: The path of ``samples.csv``.
    """
    return write_table(osp.join(run_dir, TABLE), columns,
                       lambda name, value: sample_cell(name, value, keys))


def add_columns(run_dir: str, columns: Dict[str, Iterable]) -> str:
    """Add or replace per-sample columns of ``samples.csv``, atomically.

    Values are written by the samples.csv schema (:func:`write_samples`).
    """
    path = osp.join(run_dir, TABLE)
    table = read_table(path)
    n = len(next(iter(table.values()))) if table else 0
    for name, values in columns.items():
        values = list(values)
        if len(values) != n:
            raise ValueError(f'column {name!r} has {len(values)} values for '
                             f'{n} samples')
        table[name] = values
    return write_samples(run_dir, table)
