"""Writing a run's files atomically, and reading its tables and arrays.

Every file is written to a temporary name in its folder and renamed into
place (:func:`atomic_write`); a write that fails because of the place (a
full disk, a read-only folder) is a one-line :class:`UserError` naming the
file (:func:`write_error`). The readers (:func:`read_table`,
:func:`check_array`, :func:`load_array`) refuse a missing, truncated or
damaged file with a :class:`UserError` that says how to make it again.
"""
import csv
import errno
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np

from tsneviz.errors import UserError
from tsneviz.rundir.files import CLUSTERS, RERUN, step_command

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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str, write: Callable) -> str:
    """Write ``path`` through ``write(f)`` into a temporary, then rename.

    The one way tsneviz writes a file: a reader never sees half a file,
    only the old one or the new one. A failed write leaves the old file (if
    any) and no ``.tmp_`` file; a full disk or a read-only folder is a
    :class:`UserError` naming the file.

    Args:
        path (str): The file to write; its folder must exist.
        write (Callable): Called with a binary file object open for writing.

    Returns:
        str: ``path``.

    Examples:
        >>> atomic_write('plot.png', lambda f: fig.savefig(f, format='png'))
        'plot.png'
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


def write_bytes(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(data))


def write_text(path: str, text: str) -> str:
    """Write ``text`` as UTF-8 to ``path`` atomically."""
    return write_bytes(path, text.encode('utf-8'))


def copy_file(src: str, path: str, link: bool = False) -> str:
    """Copy ``src`` to ``path`` (with its mode and times), or symlink it.

    Through a ``.tmp_`` name in the folder of ``path`` like every other
    write, so an interrupted copy never leaves half an image under a real
    name.
    """
    if not link:
        def write(f):
            with open(src, 'rb') as source:
                shutil.copyfileobj(source, f)
        atomic_write(path, write)
        shutil.copystat(src, path)
        return path
    folder = osp.dirname(osp.abspath(path))
    tmp = osp.join(folder, f'.tmp_{osp.basename(path)}')
    try:
        if osp.lexists(tmp):
            os.unlink(tmp)
        os.symlink(osp.abspath(src), tmp)
        os.replace(tmp, path)
    except OSError as err:
        if osp.lexists(tmp):
            os.unlink(tmp)
        raise (write_error(err, path) or err) from None
    return path


def write_json(path: str, obj) -> str:
    """Write JSON atomically (temporary file, then rename)."""
    data = json.dumps(obj, indent=2, default=_jsonable).encode()
    return write_bytes(path, data)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_array(path: str, array: np.ndarray) -> str:
    """``np.save`` atomically."""
    return atomic_write(path, lambda f: np.save(f, array))


def write_table(path: str, columns: Dict[str, Iterable],
                cell: Optional[Callable] = None) -> str:
    """Write equal-length columns as CSV, atomically.

    Args:
        path (str): The CSV file.
        columns (dict[str, Iterable]): Column name to values.
        cell (Callable, optional): ``cell(name, value)`` gives the text of a
            value; defaults to floats by ``repr`` (NaN empty), the rest as
            they are. :func:`write_samples` passes the samples.csv schema.
    """
    names = list(columns)
    rows = zip(*(columns[n] for n in names))
    if cell is None:
        def cell(name, value):
            return _cell(value)

    def write(f):
        import io
        text = io.TextIOWrapper(f, encoding='utf-8', newline='')
        writer = csv.writer(text)
        writer.writerow(names)
        for row in rows:
            writer.writerow([cell(n, v) for n, v in zip(names, row)])
        text.flush()
        text.detach()

    return atomic_write(path, write)


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
    rerun = RERUN if osp.basename(path) != CLUSTERS else \
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
               ndim: Optional[int] = None,
               mmap: bool = False) -> np.ndarray:
    """``np.load`` of a run's array after :func:`check_array`.

    With ``mmap`` the array is a read-only memory map of the file: a step
    that reads a sample of the rows only brings those into memory.
    """
    check_array(path, rows, ndim)
    try:
        return np.load(path, allow_pickle=False,
                       mmap_mode='r' if mmap else None)
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f'cannot read {path} ({err}); {RERUN}') from None
