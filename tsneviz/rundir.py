"""The run directory: the contract between steps.

``work_dirs/<config>/tsne_<timestamp>/`` holds ``feat_<key>.npy`` and
``feat_<key>.png``, ``samples.csv`` (one row per sample), the resolved
``config.py``, ``tsne.log`` and ``run.json``. Every file is written to a
temporary name and renamed into place, and ``run.json`` comes last: a
directory without it is an incomplete run, and readers refuse it.

:class:`Run` checks what it reads (``run.json`` parses and has
``n_samples`` and the feature keys, ``samples.csv`` has that many complete
rows, every feature and layout array is whole and of that length) and
refuses a damaged run with a :class:`UserError` naming the file. The
analysis steps that follow the layout record their outcome in
``run.json``'s ``analysis`` (:func:`record_analysis`).
"""
import contextlib
import csv
import errno
import glob
import json
import os
import os.path as osp
import shutil
import tempfile
import time
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from tsneviz.errors import UserError

MANIFEST = 'run.json'
TABLE = 'samples.csv'
# Columns every run's samples.csv has, whatever made the run.
TABLE_COLUMNS = ('gt_label', )
RERUN = 'run tools/vis_tsne.py again'
# Less free space than this after a short write means the disk is full.
FULL_DISK_BYTES = 1 << 20

# Write failures that are about the place, not about tsneviz: the user can
# fix them (free space, pick a writable folder), so they are one-line errors.
_WRITE_HINTS = {
    errno.ENOSPC: 'the disk is full; free some space, or write elsewhere '
    '(--work-dir)',
    errno.EDQUOT: 'the disk quota is used up; free some space, or write '
    'elsewhere (--work-dir)',
    errno.EFBIG: 'the file is too large for that file system; write '
    'elsewhere (--work-dir)',
    errno.EROFS: 'the file system is read-only; write elsewhere '
    '(--work-dir)',
    errno.EACCES: 'permission denied; write to a folder you can write to '
    '(--work-dir)',
    errno.EPERM: 'operation not permitted; write to a folder you can write '
    'to (--work-dir)',
}
# These three can also come from reading; they count only for files inside
# the folder being written.
_PLACE_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


def write_error(err: BaseException, path: Optional[str] = None,
                inside: Optional[str] = None) -> Optional[UserError]:
    """A one-line UserError for a write that failed because of the place.

    Args:
        err (BaseException): What the write raised.
        path (str, optional): The file or folder written; default the
            error's own file name.
        inside (str, optional): When given, a permission or read-only
            error counts only if its file lies in this folder (a run also
            reads files, and an unreadable input is not a write failure).

    Returns:
        UserError | None: The error to raise instead, or None when ``err``
        is not such a failure (then it is a bug and keeps its traceback).

    Examples:
        >>> write_error(OSError(errno.ENOSPC, 'No space left'), 'x.npy')
        UserError('cannot write x.npy: the disk is full; ...')
    """
    if isinstance(err, UserError):
        return err
    if not isinstance(err, OSError) or err.errno not in _WRITE_HINTS:
        return None
    where = path or err.filename
    if inside is not None and err.errno in _PLACE_ERRNOS:
        folder = osp.abspath(inside)
        if not where or not osp.abspath(str(where)).startswith(
                folder + os.sep):
            return None
    return UserError(f'cannot write {where or "the run directory"}: '
                     f'{_WRITE_HINTS[err.errno]}')


def new_run_dir(work_dir: str, timestamp: str) -> str:
    """Create ``tsne_<timestamp>`` (suffixed if taken) and return its path.

    Raises:
        UserError: ``work_dir`` is a file, or cannot be written (read-only,
            no permission, disk full).
    """
    check_work_dir(work_dir)
    try:
        os.makedirs(work_dir, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f'cannot create the work dir {work_dir}: a part of '
                        'that path is a file; pass a folder to --work-dir'
                        ) from None
    except OSError as err:
        raise (write_error(err, work_dir) or err) from None
    base = osp.join(work_dir, f'tsne_{timestamp}')
    path, n = base, 1
    while True:
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            path, n = f'{base}_{n}', n + 1
        except OSError as err:
            raise (write_error(err, path) or err) from None


def quiet_log_file(logger):
    """Make the run's log file drop records it cannot write.

    A record that fails to reach a full disk would otherwise print a
    traceback per log message; the run's own files then fail too and say
    so in one line, which is the error the user needs.

    Args:
        logger (logging.Logger): The run's logger.

    Returns:
        logging.Logger: The same logger.
    """
    import logging
    for handler in getattr(logger, 'handlers', []):
        if isinstance(handler, logging.FileHandler):
            handler.handleError = lambda record: None
    return logger


def check_work_dir(work_dir: str) -> None:
    """Refuse a ``--work-dir`` that is an existing file, before any work."""
    if osp.exists(work_dir) and not osp.isdir(work_dir):
        raise UserError(f'--work-dir {work_dir} is a file, not a folder; '
                        'pass a folder (it is created if missing)')


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: str, write) -> str:
    """Write ``path`` through ``write(f)`` into a temporary, then rename.

    A failed write leaves the old file (if any) and no ``.tmp_`` file; a
    full disk or a read-only folder is a :class:`UserError` naming the file.
    """
    folder = osp.dirname(osp.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp_',
                                   suffix=osp.splitext(path)[1])
    except OSError as err:
        raise (write_error(err, path) or err) from None
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
        # mkstemp makes the file private (0600); give it the mode an
        # ordinary open() would, so reports and tables can be shared.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as err:
        err = _with_errno(err, folder)
        if osp.exists(tmp):
            os.unlink(tmp)
        user_error = write_error(err, path)
        if user_error is not None and user_error is not err:
            raise user_error from None
        raise
    return path


def _with_errno(err: BaseException, folder: str) -> BaseException:
    """``err``, or ENOSPC when it is an errno-less short write on a full disk.

    numpy writes arrays with C's fwrite and reports a short write as
    ``OSError('192000 requested and 51168 written')``, without errno.
    """
    if not isinstance(err, OSError) or err.errno is not None:
        return err
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return err
    if free < FULL_DISK_BYTES:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return err


def write_json(path: str, obj) -> str:
    """Write JSON atomically (temporary file, then rename)."""
    data = json.dumps(obj, indent=2, default=_jsonable).encode()
    return _atomic(path, lambda f: f.write(data))


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_array(path: str, array: np.ndarray) -> str:
    """``np.save`` atomically."""
    return _atomic(path, lambda f: np.save(f, array))


def write_table(path: str, columns: Dict[str, Iterable]) -> str:
    """Write equal-length columns as CSV, atomically."""
    names = list(columns)
    rows = zip(*(columns[n] for n in names))

    def write(f):
        import io
        text = io.TextIOWrapper(f, encoding='utf-8', newline='')
        writer = csv.writer(text)
        writer.writerow(names)
        for row in rows:
            writer.writerow([_cell(v) for v in row])
        text.flush()
        text.detach()

    return _atomic(path, write)


def _cell(value):
    if isinstance(value, (float, np.floating)):
        return '' if np.isnan(value) else repr(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def read_table(path: str) -> Dict[str, List[str]]:
    """Read a CSV written by :func:`write_table` as columns of strings.

    Raises:
        UserError: The file is missing, empty, or truncated (a row with
            fewer cells than the header, or no final line break: every
            row :func:`write_table` writes ends with one).
    """
    # clusters.csv is remade by its own tool; everything else by a new run
    rerun = RERUN if osp.basename(path) != 'clusters.csv' else \
        f'run {step_command("clusters", osp.dirname(path))} again'
    try:
        with open(path, newline='', encoding='utf-8') as f:
            text = f.read()
    except FileNotFoundError:
        raise UserError(f'{path} is missing; {rerun}') from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f'cannot read {path}: {err}; {rerun}') from None
    if not text.strip():
        raise UserError(f'{path} is empty; {rerun}')
    if not text.endswith('\n'):
        raise UserError(f'{path} is truncated (its last line is cut off); '
                        f'{rerun}')
    reader = csv.reader(text.splitlines(keepends=True))
    names = next(reader)
    cols = {n: [] for n in names}
    for line, row in enumerate(reader, start=2):
        if len(row) != len(names):
            raise UserError(f'{path} is damaged: line {line} has {len(row)} '
                            f'cells, the header {len(names)}; {rerun}')
        for n, v in zip(names, row):
            cols[n].append(v)
    return cols


def read_manifest(run_dir: str) -> dict:
    """The ``run.json`` of a complete run; a clear error otherwise.

    Raises:
        UserError: The folder or its ``run.json`` is missing, or
            ``run.json`` is empty, truncated or lacks what every run
            records (``n_samples`` and the feature keys).
    """
    path = osp.join(run_dir, MANIFEST)
    if not osp.isdir(run_dir):
        raise UserError(f'run directory not found: {run_dir}')
    if not osp.isfile(path):
        raise UserError(f'{run_dir} has no {MANIFEST}: it is not a complete '
                        'tsneviz run; run tools/vis_tsne.py again')
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f'cannot read {path}: {err}; {RERUN}') from None
    if not text.strip():
        raise UserError(f'{path} is empty: the run did not finish; {RERUN}')
    try:
        manifest = json.loads(text)
    except ValueError as err:
        raise UserError(f'{path} is truncated or damaged (not valid JSON: '
                        f'{err}); {RERUN}') from None
    keys = manifest.get('extraction', {}).get('keys') \
        if isinstance(manifest, dict) and \
        isinstance(manifest.get('extraction'), dict) else None
    n = manifest.get('n_samples') if isinstance(manifest, dict) else None
    if not isinstance(keys, list) or not keys or \
            not isinstance(n, int) or n < 0:
        raise UserError(f'{path} is not the manifest of a tsneviz run (it '
                        'lacks n_samples or extraction.keys); ' + RERUN)
    return manifest


def check_array(path: str, rows: Optional[int] = None,
                ndim: Optional[int] = None) -> tuple:
    """Check a ``.npy`` file from its header, without reading the data.

    Args:
        path (str): The file.
        rows (int, optional): The first dimension it must have.
        ndim (int, optional): The number of dimensions it must have.

    Returns:
        tuple: Its shape.

    Raises:
        UserError: Naming the file: missing, not a ``.npy`` file, shorter
            than its header says (truncated), or of the wrong shape.
    """
    try:
        with open(path, 'rb') as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 \
                if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
            data_start = f.tell()
    except FileNotFoundError:
        raise UserError(f'{path} is missing: the run is incomplete; '
                        f'{RERUN}') from None
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f'{path} is empty, truncated or not a .npy file '
                        f'({err}); {RERUN}') from None
    if dtype.hasobject:
        raise UserError(f'{path} holds Python objects, not numbers; '
                        f'{RERUN}')
    expected = data_start + int(np.prod(shape)) * dtype.itemsize
    size = osp.getsize(path)
    if size < expected:
        raise UserError(f'{path} is truncated ({size} of {expected} bytes); '
                        f'{RERUN}')
    if (rows is not None and (not shape or shape[0] != rows)) or \
            (ndim is not None and len(shape) != ndim):
        raise UserError(f'{path} has shape {shape}, the run has {rows} '
                        f'samples; {RERUN}')
    return shape


def load_array(path: str, rows: Optional[int] = None,
               ndim: Optional[int] = None) -> np.ndarray:
    """``np.load`` of a run's array after :func:`check_array`."""
    check_array(path, rows, ndim)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f'cannot read {path} ({err}); {RERUN}') from None


def find_cached_run(work_dir: str, feature_key: str) -> Optional[str]:
    """The newest complete run under ``work_dir`` with these features."""
    runs = sorted(glob.glob(osp.join(work_dir, 'tsne_*', MANIFEST)),
                  key=osp.getmtime, reverse=True)
    for manifest_path in runs:
        try:
            with open(manifest_path, encoding='utf-8') as f:
                manifest = json.load(f)
        except (OSError, ValueError):
            continue
        if manifest.get('extraction', {}).get('feature_key') != feature_key:
            continue
        run_dir = osp.dirname(manifest_path)
        keys = manifest['extraction'].get('keys', [])
        if keys and all(_readable_array(osp.join(run_dir, f'{k}.npy'))
                        for k in keys):
            return run_dir
    return None


def _readable_array(path: str) -> bool:
    # A damaged earlier run must not feed its features into a new one.
    try:
        check_array(path)
    except UserError:
        return False
    return True


class Run:
    """A complete run directory, read back: what every later step uses.

    Args:
        path (str): The run directory (must hold ``run.json``).

    Attributes:
        path (str): The run directory.
        manifest (dict): ``run.json``.
        table (dict[str, np.ndarray]): ``samples.csv``, numeric columns as
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
        self.table = {name: _typed(name, values) for name, values in
                      read_table(table_path).items()}
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
            check_array(self._array(key), len(self), ndim=2)
            check_array(self._coords(key), len(self), ndim=2)

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
        return osp.join(self.path, f'{key}.npy')

    def _coords(self, key: str) -> str:
        return osp.join(self.path, f'{self.method}_{key}.npy')

    def features(self, key: Optional[str] = None) -> np.ndarray:
        """(N, C) features of ``key``."""
        return load_array(self._array(self.key(key)), len(self), ndim=2)

    def coords(self, key: Optional[str] = None) -> np.ndarray:
        """(N, 2 or 3) layout of ``key`` (``<method>_<key>.npy``)."""
        return load_array(self._coords(self.key(key)), len(self), ndim=2)

    @property
    def analysis(self) -> Dict[str, dict]:
        """Each analysis step's outcome (``run.json``'s ``analysis``)."""
        return dict(self.manifest.get('analysis') or {})

    @property
    def method(self) -> str:
        """The layout method: ``'tsne'``, ``'umap'`` or ``'pca'``."""
        return self.manifest.get('layout', {}).get('method', 'tsne')

    @property
    def labels(self) -> np.ndarray:
        return self.table['gt_label'].astype(np.int64)

    @property
    def image_paths(self) -> List[str]:
        """Absolute image paths (an older run's relative ones resolved
        against its recorded ``cwd`` where it has one)."""
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


# Columns that stay text even when every value looks like a number (class
# names such as '0'..'9', file names such as '17.png' without a folder).
TEXT_COLUMNS = ('img_path', 'gt_class', 'pred_class')


def _typed(name: str, values: List[str]) -> np.ndarray:
    if name in TEXT_COLUMNS:
        return np.array(values, dtype=object)
    try:
        return np.array([float(v) if v != '' else np.nan for v in values])
    except ValueError:
        return np.array(values, dtype=object)


def add_columns(run_dir: str, columns: Dict[str, Iterable]) -> str:
    """Add or replace per-sample columns of ``samples.csv``, atomically."""
    path = osp.join(run_dir, TABLE)
    table = read_table(path)
    n = len(next(iter(table.values()))) if table else 0
    for name, values in columns.items():
        values = list(values)
        if len(values) != n:
            raise ValueError(f'column {name!r} has {len(values)} values for '
                             f'{n} samples')
        table[name] = values
    return write_table(path, table)


def update_manifest(run_dir: str, sections: Optional[dict] = None,
                    outputs: Sequence[str] = ()) -> dict:
    """Merge sections into ``run.json`` and list new outputs; written last.

    Later steps (clusters, neighbours, exports) write their files first and
    then call this, so ``run.json`` stays the last file written and lists
    every output.

    Args:
        run_dir (str): A complete run directory.
        sections (dict, optional): Top-level keys to set, e.g.
            ``{'clusters': {...}}``.
        outputs (Sequence[str]): File names relative to ``run_dir``.

    Returns:
        dict: The new manifest.
    """
    manifest = read_manifest(run_dir)
    manifest.update(sections or {})
    listed = manifest.setdefault('outputs', [])
    listed.extend(o for o in outputs if o not in listed)
    write_json(osp.join(run_dir, MANIFEST), manifest)
    return manifest


# How each analysis step is run again on its own, for the message of a step
# that failed; ``{run}`` is the quoted run directory. neighbors has no tool
# of its own (tools/neighbors.py queries one sample), so it names the API.
STEP_TOOLS = {'views': 'views.py', 'clusters': 'cluster.py',
              'report': 'report.py', 'explorer': 'explore.py'}
# The outcomes ``run.json`` records under ``analysis.<step>.status``.
STEP_STATUSES = ('pending', 'ok', 'skipped', 'failed')


class AnalysisFailed(UserError):
    """An analysis step failed after the run itself was complete.

    Exit status 3, not 2: the run directory is complete and usable (its
    ``run.json`` says which step failed), unlike a bad-input error, which
    leaves no run behind.
    """

    exit_code = 3


def step_command(step: str, run_dir: str) -> str:
    """The command line that runs one analysis step again."""
    from tsneviz.cli import shell_command, tool_command
    if step in STEP_TOOLS:
        return tool_command(STEP_TOOLS[step], run_dir)
    # a step without a tool of its own (neighbors) runs through the API
    return shell_command('python', '-c', 'from tsneviz.apis import '
                         f'analyze_run; analyze_run({run_dir!r}, [{step!r}])')


@contextlib.contextmanager
def recorded_step(run_dir: str, step: str):
    """Time a re-run of one analysis step and record it as ``ok``.

    The tools that re-run a step (``tools/cluster.py`` and the like) wrap
    their work in it, so a re-run after a failed step replaces its
    ``failed`` entry in ``run.json``; a step that fails again keeps it.

    Examples:
        >>> with recorded_step(run_dir, 'clusters'):
        ...     cluster_run(run_dir)
    """
    started = time.perf_counter()
    yield
    record_analysis(run_dir, {step: dict(
        status='ok', seconds=round(time.perf_counter() - started, 3))})


def record_analysis(run_dir: str, outcomes: Dict[str, dict]) -> dict:
    """Set the outcome of analysis steps in ``run.json``.

    ``run.json``'s ``analysis`` maps each step that was asked for to
    ``{'status': 'pending' | 'ok' | 'skipped' | 'failed', ...}`` with
    ``seconds`` when it ran, ``error`` when it failed and ``reason`` when
    it was skipped. Steps already recorded and not named keep their entry.

    Args:
        run_dir (str): A complete run directory.
        outcomes (dict[str, dict]): Step name to its new entry.

    Returns:
        dict: The new manifest.

    Examples:
        >>> record_analysis(run_dir, {'clusters': {'status': 'ok',
        ...                                        'seconds': 0.4}})
    """
    for step, outcome in outcomes.items():
        if outcome.get('status') not in STEP_STATUSES:
            raise ValueError(f'analysis status of {step!r} must be one of '
                             f'{STEP_STATUSES}, got {outcome!r}')
    manifest = read_manifest(run_dir)
    analysis = dict(manifest.get('analysis') or {})
    analysis.update(outcomes)
    return update_manifest(run_dir, {'analysis': analysis})


def failed_steps(manifest: dict) -> List[str]:
    """The analysis steps that ``run.json`` records as failed."""
    return [step for step, outcome in (manifest.get('analysis') or {}).items()
            if isinstance(outcome, dict) and outcome.get('status') == 'failed']
