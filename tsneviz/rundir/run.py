"""The reader of a complete run directory: :class:`Run`."""
import functools
import glob
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from tsneviz.errors import UserError
from tsneviz.rundir.files import (
    CLUSTERS,
    LOGITS,
    MANIFEST,
    RERUN,
    TABLE,
    coords_file,
    features_file,
    log_file,
    neighbors_file,
    plot_file,
)
from tsneviz.rundir.io import (
    MAX_FILE_BYTES,
    check_array,
    load_array,
    read_npz,
    read_regular,
    read_table,
)
from tsneviz.rundir.manifest import read_manifest
from tsneviz.rundir.schema import (
    COORD_AXES,
    INT,
    TABLE_COLUMNS,
    column_kind,
    typed_column,
)

# The columns a layout may have: 2-D or 3-D maps (one table column each).
COORD_DIMS = (2, len(COORD_AXES))


class Run:
    """A complete run directory, read back: what every later step uses.

    Args:
        path (str): The run directory (must hold ``run.json``).

    Attributes:
        path (str): The run directory.
        manifest (dict): ``run.json``.
        table (dict[str, np.ndarray]): ``samples.csv`` typed by its
            schema (:data:`SAMPLE_COLUMNS`): numeric columns as float64
            arrays (NaN for empty cells), text columns as object arrays.
        keys (list[str]): Feature keys, e.g. ``['feat_3']``.

    Examples:
        >>> run = Run('work_dirs/digits/tsne_20261123_144017')
        >>> run.features().shape, run.coords().shape
        ((540, 128), (540, 2))
    """

    def __init__(self, path: str):
        self.path = path
        self.manifest = read_manifest(path)
        self.keys = list(self.manifest['extraction']['keys'])
        table_path = osp.join(path, TABLE)
        self._text = read_table(table_path, inside=path)
        self.table = {name: typed_column(name, values, self.keys)
                      for name, values in self._text.items()}
        # Every later step trusts these; a damaged run is refused here,
        # naming the file, rather than giving wrong counts or tracebacks.
        missing = [c for c in TABLE_COLUMNS if c not in self.table]
        if missing:
            raise UserError(f'{table_path} lacks the column(s) '
                            f'{", ".join(missing)}; {RERUN}')
        rows = len(self.table['gt_label'])
        if rows != len(self):
            raise UserError(f'{table_path} has {rows} rows but {MANIFEST} '
                            f'records {len(self)} samples: it is truncated '
                            f'or damaged; {RERUN}')
        for name in ('index', 'gt_label'):
            column = self.table.get(name)
            if column is None:
                continue
            if column.dtype == object or np.isnan(column).any():
                raise UserError(f'{table_path} has empty or non-numeric '
                                f'{name} values: it is damaged; {RERUN}')
        for name, column in self.table.items():
            _check_whole(table_path, name, column, self._text[name],
                         self.keys)

    def check_arrays(self) -> None:
        """Check every feature and layout array from its header.

        :meth:`features` and :meth:`coords` check the one they read; this
        checks them all at once, for a step that must not start on a
        damaged run.

        Raises:
            UserError: Naming the first missing, truncated or misshapen
                file.
        """
        for key in self.keys:
            check_array(self._array(key), len(self), ndim=2,
                        inside=self.path)
            check_array(self._coords(key), len(self), ndim=2,
                        inside=self.path, cols=COORD_DIMS)

    def __len__(self) -> int:
        return int(self.manifest['n_samples'])

    def key(self, key: Optional[str] = None) -> str:
        """``key`` checked against the run's keys; default the first."""
        if key is None:
            return self.keys[0]
        if key not in self.keys:
            raise UserError(f'{self.path} has no feature {key!r}; it has '
                            f'{", ".join(self.keys)}')
        return key

    def _array(self, key: str) -> str:
        return osp.join(self.path, features_file(key))

    def _coords(self, key: str) -> str:
        return osp.join(self.path, coords_file(self.method, key))

    def file(self, name: str) -> str:
        """The path of the run's file ``name`` (e.g. :data:`CLUSTERS`)."""
        return osp.join(self.path, name)

    def has(self, name: str) -> bool:
        """Whether the run holds the file ``name``."""
        return osp.isfile(self.file(name))

    def read_bytes(self, name: str) -> bytes:
        """The bytes of the run's file ``name`` (a plot, a page).

        Raises:
            UserError: The file is missing or unreadable, not a regular
                file inside the run, or larger than :data:`MAX_FILE_BYTES`.
        """
        path = self.file(name)
        try:
            return read_regular(path, MAX_FILE_BYTES, self.path)
        except FileNotFoundError:
            raise UserError(f'{path} is missing') from None
        except OSError as err:
            raise UserError(f'cannot read {path}: {err}') from None

    def text_table(self) -> Dict[str, List[str]]:
        """``samples.csv`` as written: columns of text, a copy.

        For output that must show a cell exactly as the run wrote it (the
        exports); :attr:`table` has the typed values.
        """
        return {name: list(values) for name, values in self._text.items()}

    def logits(self) -> Optional[np.ndarray]:
        """(N, n_classes) logits (``logits.npy``), or None without a head."""
        path = self.file(LOGITS)
        if not osp.isfile(path):
            return None
        return load_array(path, len(self), ndim=2, inside=self.path)

    def neighbors(self, key: Optional[str] = None) -> Optional[dict]:
        """The stored neighbours of ``key`` (``neighbors_<key>.npz``).

        Returns:
            dict | None: ``indices`` (N, k) int32 sample positions,
            ``distances`` (N, k) float32 and ``metric`` (str), and where
            the file has them ``builder``, ``space`` (str) and ``recall``
            (float); None when they were not computed.

        Raises:
            UserError: The file is damaged.
        """
        path = self.file(neighbors_file(self.key(key)))
        if not osp.lexists(path):
            return None
        n, again = len(self), 'run the neighbors step again'
        try:
            # (N, k) neighbours among the N - 1 other samples: declared
            # larger, the file is refused before its data is read
            data = read_npz(path, bounds=(n, max(n - 1, 0)),
                            inside=self.path, hint=again)
            found = dict(indices=data['indices'],
                         distances=data['distances'],
                         metric=str(data['metric']))
            # how the graph was searched (files since the shared graph)
            for name in ('builder', 'space'):
                if name in data:
                    found[name] = str(data[name])
            if 'recall' in data:
                found['recall'] = float(data['recall'])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f'cannot read {path} ({err}); {again}') from None
        shape = found['indices'].shape
        if len(shape) != 2 or shape[0] != n or \
                found['distances'].shape != shape:
            raise UserError(f'{path} has indices of shape {shape} and '
                            f'distances of shape {found["distances"].shape},'
                            f' the run {n} samples; {again}')
        _check_neighbors(path, found['indices'], found['distances'], n)
        return found

    def clusters(self) -> Optional[Dict[str, List[str]]]:
        """``clusters.csv`` as columns of text, or None when not clustered.

        Raises:
            UserError: The file is empty or damaged (naming the tool that
                writes it again).
        """
        path = self.file(CLUSTERS)
        if not osp.isfile(path):
            return None
        return read_table(path, inside=self.path)

    def plot_files(self) -> List[str]:
        """Names of the run's PNG plots: ``<key>.png``, ``<key>_<view>.png``.

        Sorted by name; for every feature key of the run.
        """
        found = set()
        for key in self.keys:
            found.update(osp.basename(p) for p in glob.glob(
                osp.join(glob.escape(self.path), plot_file(key, '*'))))
            if osp.isfile(self.file(plot_file(key))):
                found.add(plot_file(key))
        return sorted(found)

    def features(self, key: Optional[str] = None) -> np.ndarray:
        """(N, C) features of ``key``, a read-only memory map of the file.

        At a million rows the features are 2 GB; the steps that read them
        take a sample or stream them, so mapping keeps only what they
        touch in memory.
        """
        return load_array(self._array(self.key(key)), len(self), ndim=2,
                          mmap=True, inside=self.path)

    def coords(self, key: Optional[str] = None) -> np.ndarray:
        """(N, 2 or 3) layout of ``key`` (``<method>_<key>.npy``).

        Raises:
            UserError: The file is damaged, has not 2 or 3 columns, or
                holds a coordinate that is not a finite number.
        """
        path = self._coords(self.key(key))
        coords = load_array(path, len(self), ndim=2, inside=self.path,
                            cols=COORD_DIMS)
        if coords.dtype.kind not in 'iuf':
            raise UserError(f'{path} holds {coords.dtype}, not '
                            f'coordinates; {RERUN}')
        if not np.isfinite(coords).all():
            raise UserError(f'{path} holds coordinates that are not finite '
                            f'numbers; {RERUN}')
        return coords

    @property
    def analysis(self) -> Dict[str, dict]:
        """Each analysis step's outcome (``run.json``'s ``analysis``)."""
        return dict(self.manifest.get('analysis') or {})

    @property
    def method(self) -> str:
        """The layout method: ``'tsne'``, ``'umap'`` or ``'pca'``."""
        return self.manifest['layout'].get('method', 'tsne')

    @property
    def layout_params(self) -> dict:
        """The parameters the layout was made with (``layout.params``).

        Any method's: t-SNE's, UMAP's or PCA's (older runs are upgraded
        to this shape as they are read: :func:`upgrade_manifest`).
        """
        return dict(self.manifest['layout'].get('params') or {})

    @property
    def metric(self) -> str:
        """The distance the layout used in feature space (euclidean when
        the method has none, e.g. PCA): what its silhouette must use."""
        return str(self.layout_params.get('metric') or 'euclidean')

    @property
    def log_path(self) -> str:
        """The run's log file (:func:`log_file` of its method)."""
        return osp.join(self.path, log_file(self.method))

    @property
    def labels(self) -> np.ndarray:
        return self.table['gt_label'].astype(np.int64)

    @functools.cached_property
    def image_paths(self) -> List[str]:
        """Absolute image paths (an older run's relative ones resolved
        against its recorded ``cwd`` where it has one).

        Resolved once per ``Run``: the explorer reads them three times, and
        the table they come from is read once, in ``__init__``.
        """
        from tsneviz.data.paths import run_image_paths
        return run_image_paths(self, strict=False)

    @property
    def classes(self) -> Optional[List[str]]:
        return self.manifest.get('classes')

    @property
    def has_predictions(self) -> bool:
        return 'pred_label' in self.table

    @property
    def label_space(self):
        """The dataset's and the model's classes (:mod:`tsneviz.labels`)."""
        from tsneviz.labels import LabelSpace
        if getattr(self, '_label_space', None) is None:
            self._label_space = LabelSpace.from_run(self.manifest, self.table)
        return self._label_space

    def positions(self, indices: Iterable[int],
                  hint: str = 'the index column of samples.csv'
                  ) -> np.ndarray:
        """Rows of the given DATASET indices, in order, repeats dropped.

        Raises:
            UserError: Naming a few indices that are not samples of the run.
        """
        row_of = {int(i): p for p, i in enumerate(self.table['index'])}
        wanted = list(dict.fromkeys(int(i) for i in indices))
        missing = [i for i in wanted if i not in row_of]
        if missing:
            shown = ', '.join(str(i) for i in missing[:5])
            more = f' and {len(missing) - 5} more' if len(missing) > 5 \
                else ''
            raise UserError(f'{len(missing)} of the indices are not samples '
                            f'of the run: {shown}{more} (they are dataset '
                            f'indices, {hint})')
        return np.array([row_of[i] for i in wanted], dtype=np.int64)

    def check_index(self, index: int) -> int:
        """A sample position of this run, or a clear error."""
        if not 0 <= index < len(self):
            raise UserError(f'index {index} is out of range: the run has '
                            f'{len(self)} samples (0..{len(self) - 1})')
        return index


# Whole numbers a float64 holds exactly (and a browser's JSON reader too).
_MAX_WHOLE = 2 ** 53


def _check_whole(path: str, name: str, column: np.ndarray,
                 text: Sequence[str], keys: Sequence[str]) -> None:
    """An int column of ``samples.csv`` holds whole numbers (or blanks).

    Every reader turns them into ints: ``1e400`` (infinite as a float) or
    ``2.5`` would fail there, or silently become another number.
    """
    if column_kind(name, keys) != INT or column.dtype != np.float64:
        return
    with np.errstate(invalid='ignore'):
        bad = ~np.isnan(column) & ((np.abs(column) > _MAX_WHOLE) |
                                   (column != np.round(column)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise UserError(f'{path} has {name} values that are not whole '
                        f'numbers (such as {text[row]!r} in row {row + 1}): '
                        f'it is damaged; {RERUN}')


def _check_neighbors(path: str, indices: np.ndarray, distances: np.ndarray,
                     n: int) -> None:
    """Stored neighbours are sample positions of the run, at distances."""
    again = 'run the neighbors step again'
    if indices.ndim != 2 or indices.dtype.kind not in 'iu':
        raise UserError(f'{path}: indices are {indices.dtype} of shape '
                        f'{indices.shape}, not a table of sample positions; '
                        f'{again}')
    if distances.shape != indices.shape or distances.dtype.kind != 'f':
        raise UserError(f'{path}: distances are {distances.dtype} of shape '
                        f'{distances.shape}, not one number per neighbour '
                        f'{indices.shape}; {again}')
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise UserError(f'{path}: indices hold positions outside 0..{n - 1} '
                        f'(the run has {n} samples); {again}')
    if not np.isfinite(distances).all():
        raise UserError(f'{path}: distances hold values that are not finite '
                        f'numbers; {again}')
