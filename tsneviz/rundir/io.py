"""Writing a run's files atomically, and reading its tables and arrays.

Every file is written to a temporary name in its folder and renamed into
place (:func:`atomic_write`); a write that fails because of the place (a
full disk, a read-only folder) is a one-line :class:`UserError` naming the
file (:func:`write_error`). The readers (:func:`read_table`,
:func:`check_array`, :func:`load_array`, :func:`read_npz`) refuse a
missing, truncated or damaged file with a :class:`UserError` that says how
to make it again.

A run directory may have been written by someone else (a shared work dir,
a run copied from elsewhere), so every reader opens its file through
:func:`open_regular`: a regular file only (a FIFO would hang the reader, a
device such as ``/dev/zero`` never ends), no larger than a cap, and, given
the folder it must be in, reached without following a symbolic link, in
the same system calls that open it (a check before the open can be raced).
"""
import csv
import errno
import json
import math
import os
import os.path as osp
import shutil
import stat
import tempfile
import zipfile
import zlib
from typing import BinaryIO, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from tsneviz.errors import UserError
from tsneviz.rundir.files import CLUSTERS, RERUN, step_command

# Less free space than this after a short write means the disk is full.
FULL_DISK_BYTES = 1 << 20

# What is read of a run's files at most. Each cap is far above what a real
# run writes, and what makes a sparse file of a terabyte, or a file that
# only says it is large, a one-line refusal instead of the machine's memory.
#: ``run.json`` (21 843 class names of ImageNet-21k are 0.5 MB) and
#: ``thumbs/index.json`` (11 MB of base64 ids and sizes at a million
#: samples); parsed, JSON takes a few times its size.
MAX_JSON_BYTES = 64 << 20
#: ``samples.csv`` and ``clusters.csv``: a million samples take about
#: 300 MB (a row is an image path, labels and a dozen numbers).
MAX_TABLE_BYTES = 2 << 30
#: All the arrays of a ``neighbors_<key>.npz`` together, as their ``.npy``
#: headers declare them: a million samples with 90 neighbours (perplexity
#: 30) are 720 MB. A zip member can declare far more than its compressed
#: bytes, so the headers are checked before any data is read.
MAX_NPZ_BYTES = 2 << 30
#: Any other file of a run read whole: a plot, the explorer's page (27 MB
#: at a million samples).
MAX_FILE_BYTES = 512 << 20

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


class UnsafeFile(UserError):
    """A file tsneviz does not read: reached through a symbolic link or out
    of its folder, not a regular file (a FIFO, a device, a folder), or
    larger than its cap."""


# O_NONBLOCK: opening a FIFO for reading would wait for a writer forever;
# on a regular file it changes nothing. O_NOCTTY: a terminal named as a
# file must not become the server's.
_READ_FLAGS = (os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_NOCTTY', 0) |
               getattr(os, 'O_CLOEXEC', 0))


def _open_below(path: str, folder: str) -> int:
    """A descriptor of ``path`` opened from ``folder`` down, no link
    followed: each folder on the way is opened relative to the one before
    it with ``O_NOFOLLOW``, so what is checked is what is opened."""
    rel = osp.relpath(osp.abspath(path), osp.abspath(folder))
    parts = rel.split(os.sep)
    if rel in ('.', '') or parts[0] == os.pardir or osp.isabs(rel):
        raise UnsafeFile(f'{path} is outside {folder}; only files inside '
                         'it are read')
    directory = os.O_RDONLY | os.O_DIRECTORY | getattr(os, 'O_CLOEXEC', 0)
    fd = os.open(folder, directory)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                found = os.open(part, (_READ_FLAGS if last else directory) |
                                os.O_NOFOLLOW, dir_fd=fd)
            except OSError as err:
                if err.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    try:
                        link = stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode)
                    except OSError:
                        link = False
                    if link:
                        where = osp.join(folder, *parts[:i + 1])
                        raise UnsafeFile(
                            f'{where} is a symbolic link; a file is read '
                            f'only when it lies inside {folder} itself'
                            ) from None
                    raise FileNotFoundError(
                        errno.ENOENT, os.strerror(errno.ENOENT),
                        path) from None
                raise
            os.close(fd)
            fd = found
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_regular(path: str, inside: Optional[str] = None,
                 max_bytes: Optional[int] = None) -> BinaryIO:
    """Open a file for reading only when it is a regular file, in one step.

    The one way tsneviz opens a run's files and the images it serves. The
    checks are made on the open file (``fstat``), never on the name
    before opening it, so a link swapped in between changes nothing.

    Args:
        path (str): The file.
        inside (str, optional): The folder ``path`` must lie in. Every
            name below it is opened with ``O_NOFOLLOW``: a symbolic link
            on the way is refused, whether it points in or out (resolve
            ``path`` first to allow links that stay inside). The folder
            itself may be a link. Defaults to None: links are followed.
        max_bytes (int, optional): The largest file accepted.

    Returns:
        BinaryIO: The file, open for binary reading.

    Raises:
        FileNotFoundError: There is no such file.
        UnsafeFile: ``path`` leaves ``inside`` or reaches it through a
            link, is not a regular file, or is larger than ``max_bytes``.

    Examples:
        >>> with open_regular('run/samples.csv', inside='run') as f:
        ...     f.read(5)
        b'index'
        >>> open_regular('run/fifo.csv')
        Traceback (most recent call last):
        ...
        UnsafeFile: run/fifo.csv is not a regular file (a FIFO); ...
    """
    fd = os.open(path, _READ_FLAGS) if inside is None else \
        _open_below(path, inside)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ('a FIFO' if stat.S_ISFIFO(st.st_mode) else
                    'a folder' if stat.S_ISDIR(st.st_mode) else
                    'a device or a socket')
            raise UnsafeFile(f'{path} is not a regular file ({kind}); only '
                             'regular files are read')
        if max_bytes is not None and st.st_size > max_bytes:
            raise UnsafeFile(f'{path} is {st.st_size} bytes, more than the '
                             f'{max_bytes} read of such a file')
        return os.fdopen(fd, 'rb')
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str, max_bytes: int,
                 inside: Optional[str] = None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    :func:`open_regular`, then at most ``max_bytes`` read: a file that
    grows while it is read is refused too.

    Examples:
        >>> read_regular('run/run.json', MAX_JSON_BYTES, inside='run')[:1]
        b'{'
    """
    with open_regular(path, inside, max_bytes) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnsafeFile(f'{path} grew past {max_bytes} bytes while it was '
                         'read')
    return data


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


def read_table(path: str, inside: Optional[str] = None
               ) -> Dict[str, List[str]]:
    """Read a CSV written by :func:`write_table` as columns of strings.

    Args:
        path (str): The CSV file, at most :data:`MAX_TABLE_BYTES`.
        inside (str, optional): The folder it must lie in, reached without
            a link (:func:`open_regular`). Defaults to None.

    Raises:
        UserError: The file is missing, empty, or truncated (a row with
            fewer cells than the header, or no final line break: every
            row :func:`write_table` writes ends with one); or it is not
            a regular file, or too large (:class:`UnsafeFile`).
    """
    # clusters.csv is remade by its own tool; everything else by a new run
    rerun = RERUN if osp.basename(path) != CLUSTERS else \
        f'run {step_command("clusters", osp.dirname(path))} again'
    try:
        text = read_regular(path, MAX_TABLE_BYTES, inside).decode('utf-8')
    except FileNotFoundError:
        raise UserError(f'{path} is missing; {rerun}') from None
    except UnsafeFile as err:
        raise UnsafeFile(f'{err}; {rerun}') from None
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


def _array_header(f, path: str, size: Optional[int], hint: str = RERUN
                  ) -> Tuple[tuple, np.dtype, bool, int]:
    """``(shape, dtype, fortran_order, data offset)`` of an open ``.npy``,
    checked: numbers only, and (given its ``size``) as many bytes as the
    header says."""
    try:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 \
            if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        data_start = f.tell()
    except (OSError, ValueError, EOFError, zlib.error) as err:
        raise UserError(f'{path} is empty, truncated or not a .npy file '
                        f'({err}); {hint}') from None
    if dtype.hasobject:
        raise UserError(f'{path} holds Python objects, not numbers; '
                        f'{hint}')
    expected = data_start + math.prod(shape) * dtype.itemsize
    if size is not None and size < expected:
        raise UserError(f'{path} is truncated ({size} of {expected} bytes); '
                        f'{hint}')
    return shape, dtype, fortran, data_start


def _check_shape(path: str, shape: tuple, rows: Optional[int],
                 ndim: Optional[int], cols: Optional[Iterable[int]]) -> None:
    if (rows is not None and (not shape or shape[0] != rows)) or \
            (ndim is not None and len(shape) != ndim):
        raise UserError(f'{path} has shape {shape}, the run has {rows} '
                        f'samples; {RERUN}')
    if cols is not None and (len(shape) < 2 or shape[1] not in cols):
        raise UserError(f'{path} has shape {shape}: its second dimension '
                        f'must be one of {", ".join(map(str, cols))}; '
                        f'{RERUN}')


def _open_array(path: str, inside: Optional[str]) -> BinaryIO:
    try:
        return open_regular(path, inside)
    except FileNotFoundError:
        raise UserError(f'{path} is missing: the run is incomplete; '
                        f'{RERUN}') from None
    except UnsafeFile as err:
        raise UnsafeFile(f'{err}; {RERUN}') from None
    except OSError as err:
        raise UserError(f'cannot read {path} ({err}); {RERUN}') from None


def check_array(path: str, rows: Optional[int] = None,
                ndim: Optional[int] = None, inside: Optional[str] = None,
                cols: Optional[Iterable[int]] = None) -> tuple:
    """Check a ``.npy`` file from its header, without reading the data.

    Args:
        path (str): The file.
        rows (int, optional): The first dimension it must have.
        ndim (int, optional): The number of dimensions it must have.
        inside (str, optional): The folder it must lie in, reached without
            a link (:func:`open_regular`). Defaults to None.
        cols (Iterable[int], optional): The second dimensions it may have.

    Returns:
        tuple: Its shape.

    Raises:
        UserError: Naming the file: missing, not a regular file, not a
            ``.npy`` file, shorter than its header says (truncated), or
            of the wrong shape.
    """
    with _open_array(path, inside) as f:
        shape = _array_header(f, path, os.fstat(f.fileno()).st_size)[0]
    _check_shape(path, shape, rows, ndim, cols)
    return shape


def load_array(path: str, rows: Optional[int] = None,
               ndim: Optional[int] = None,
               mmap: bool = False, inside: Optional[str] = None,
               cols: Optional[Iterable[int]] = None) -> np.ndarray:
    """A run's array, checked as :func:`check_array` checks it, then read.

    Checked and read through one open file, so the data read is that of
    the header checked. With ``mmap`` the array is a read-only memory map
    of the file: a step that reads a sample of the rows only brings those
    into memory.
    """
    with _open_array(path, inside) as f:
        shape, dtype, fortran, start = _array_header(
            f, path, os.fstat(f.fileno()).st_size)
        _check_shape(path, shape, rows, ndim, cols)
        try:
            if mmap:
                # the map keeps its own descriptor: closing f leaves it
                mapped = np.memmap(f, dtype=dtype, mode='r', offset=start,
                                   shape=shape,
                                   order='F' if fortran else 'C')
                # opened by descriptor, the map knows no name: say which
                # file it maps, as np.load(mmap_mode='r') would
                mapped.filename = osp.abspath(path)
                return mapped
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise UserError(f'cannot read {path} ({err}); {RERUN}') from None


def read_npz(path: str, bounds: Optional[Tuple[int, ...]] = None,
             max_bytes: int = MAX_NPZ_BYTES, inside: Optional[str] = None,
             hint: str = RERUN) -> Dict[str, np.ndarray]:
    """The arrays of an ``.npz``, each checked from its header first.

    A member of a zip file can declare an array far larger than the file
    (zeros compress a thousand times), so the ``.npy`` header of every
    member is read before any data: numbers only, a shape within
    ``bounds``, and all together at most ``max_bytes``.

    Args:
        path (str): The file, at most ``max_bytes`` (plus the zip's own
            records).
        bounds (tuple[int], optional): The largest shape an array may
            have: no more dimensions, and none larger. Defaults to None.
        max_bytes (int): The most bytes of all arrays together. Defaults
            to :data:`MAX_NPZ_BYTES`.
        inside (str, optional): The folder it must lie in, reached without
            a link (:func:`open_regular`). Defaults to None.
        hint (str): What makes the file again, for the errors. Defaults
            to :data:`RERUN`.

    Returns:
        dict[str, np.ndarray]: By name, without the ``.npy`` suffix.

    Raises:
        FileNotFoundError: There is no such file.
        UserError: Naming the file: not a regular file, not a zip of
            ``.npy`` files, or an array beyond ``bounds`` or ``max_bytes``.

    Examples:
        >>> found = read_npz('run/neighbors_feat_3.npz', bounds=(300, 299))
        >>> found['indices'].shape
        (300, 20)
    """
    def refuse(why):
        return UserError(f'{path} {why}; {hint}')

    try:
        # the zip's own records, beside the arrays: a few hundred bytes each
        f = open_regular(path, inside, max_bytes + (1 << 20))
    except UnsafeFile as err:
        raise UnsafeFile(f'{err}; {hint}') from None
    with f:
        try:
            with zipfile.ZipFile(f) as zf:
                names = [n for n in zf.namelist() if n.endswith('.npy')]
                total = 0
                for name in names:
                    with zf.open(name) as member:
                        shape, dtype, _, start = _array_header(
                            member, f'{path}:{name}', None, hint)
                    if bounds is not None and (
                            len(shape) > len(bounds) or
                            any(d > b for d, b in zip(shape, bounds))):
                        raise refuse(f'declares {name[:-4]} of shape '
                                     f'{shape}, more than {bounds}')
                    nbytes = math.prod(shape) * dtype.itemsize
                    total += nbytes
                    if total > max_bytes:
                        raise refuse(f'declares arrays of more than '
                                     f'{max_bytes} bytes')
                    if zf.getinfo(name).file_size < start + nbytes:
                        raise refuse(f'is truncated ({name} is shorter '
                                     'than its header says)')
                arrays = {}
                for name in names:
                    with zf.open(name) as member:
                        arrays[name[:-4]] = np.lib.format.read_array(
                            member, allow_pickle=False)
                return arrays
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error,
                OSError, ValueError, EOFError) as err:
            raise refuse(f'is not a readable .npz file ({err})') from None
