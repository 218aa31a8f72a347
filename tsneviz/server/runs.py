"""The runs a server serves: found under its root, named, read on demand.

A run's id is its path relative to the root with ``/`` written as ``~``
(``resnet18-slim_digits~tsne_20261123_150348``): one URL segment, so routes
such as ``/api/runs/{run}/points`` stay unambiguous, and made only of
characters that need no escaping. A folder whose name holds ``~`` is not
searched (and a warning says so): ``c1~run`` would take the id of
``c1/run``. When the root is itself a run directory the id is its folder
name.

Requests name runs only by id, looked up in what discovery found: a path
from a request never reaches the file system, so ``..`` in a run id is
simply an unknown run.

A run directory whose files cannot be read (``run.json`` that is not an
object, an empty ``samples.csv``) is :class:`BrokenRun` for the requests
that name it, and listed as broken: it never breaks the others.
"""
import logging
import os
import os.path as osp
import threading
import time
from typing import Dict, List, Optional, Set, Tuple

from tsneviz.errors import UserError
from tsneviz.rundir import MANIFEST, TABLE, Run
from tsneviz.server.errors import BrokenRun

__all__ = ['RunIndex', 'UnknownRun', 'BrokenRun', 'SEP', 'MAX_DEPTH']

# Columns every request that reads samples relies on.
_COLUMNS = ('index', 'img_path', 'gt_label')

#: Stands for ``/`` in run ids.
SEP = '~'
#: Folder levels searched below the root: ``work_dirs/<config>/tsne_*``
#: is two, a repository holding ``work_dirs`` three.
MAX_DEPTH = 3
# Seconds a listing is reused; an unknown id always triggers a new scan,
# so a run that a job just finished is found at once.
_TTL = 2.0
log = logging.getLogger('tsneviz.server')


class UnknownRun(UserError):
    """A run id that names no complete run under the root (404)."""


class RunIndex:
    """Complete runs (``run.json`` present) under a root, by id.

    Args:
        root (str): A run directory or a folder holding runs (searched
            :data:`MAX_DEPTH` levels deep; hidden folders, symlinked
            folders and folders whose name holds :data:`SEP` are not
            followed, and nothing below a run is searched).

    Examples:
        >>> index = RunIndex('work_dirs')
        >>> index.ids()
        ['resnet18-slim_digits~tsne_20261123_150348']
        >>> index.run('resnet18-slim_digits~tsne_20261123_150348').keys
        ['feat_3']
    """

    def __init__(self, root: str):
        self.root = osp.abspath(root)
        if not osp.isdir(self.root):
            raise UserError(f'not a directory: {root}; pass a run directory '
                            'or a work dir holding runs')
        self.single = osp.isfile(osp.join(self.root, MANIFEST))
        self._lock = threading.Lock()
        self._found: Dict[str, str] = {}
        self._scanned = 0.0
        self._runs: Dict[str, Tuple[tuple, Run]] = {}
        self._skipped: Set[str] = set()  # warned about once each

    def _scan(self) -> Dict[str, str]:
        if self.single:
            return {osp.basename(self.root): self.root}
        found = {}
        for folder, dirs, files in os.walk(self.root):
            rel = osp.relpath(folder, self.root)
            depth = 0 if rel == '.' else rel.count(os.sep) + 1
            if MANIFEST in files and depth > 0:
                found[rel.replace(os.sep, SEP)] = folder
                dirs[:] = []  # a run's subfolders are its outputs
                continue
            # os.walk does not follow symlinked folders (followlinks=False)
            dirs[:] = sorted(d for d in dirs if not d.startswith('.') and
                             self._usable(folder, d)) \
                if depth < MAX_DEPTH else []
        return found

    def _usable(self, folder: str, name: str) -> bool:
        """Whether a folder's name can be part of a run id."""
        if SEP not in name:
            return True
        path = osp.join(folder, name)
        if path not in self._skipped:
            self._skipped.add(path)
            log.warning('not serving the runs in %s: %r in a folder name '
                        'would make run ids ambiguous (it stands for "/" in '
                        'them); rename the folder', osp.relpath(
                            path, self.root), SEP)
        return False

    def found(self, refresh: bool = False) -> Dict[str, str]:
        """Id → run directory of every complete run, scanned if stale."""
        with self._lock:
            if refresh or time.monotonic() - self._scanned > _TTL:
                self._found = self._scan()
                self._scanned = time.monotonic()
            return dict(self._found)

    def ids(self) -> List[str]:
        """Ids of the complete runs, sorted."""
        return sorted(self.found())

    def id_of(self, run_dir: str) -> Optional[str]:
        """The id of a run directory under the root, or None."""
        path = osp.abspath(run_dir)
        for run_id, folder in self.found(refresh=True).items():
            if osp.abspath(folder) == path:
                return run_id
        return None

    def path(self, run_id: str) -> str:
        """The directory of a run id; :class:`UnknownRun` if none."""
        folder = self.found().get(run_id)
        if folder is None:
            folder = self.found(refresh=True).get(run_id)
        if folder is None or not osp.isfile(osp.join(folder, MANIFEST)):
            raise UnknownRun(f'unknown run {run_id!r}: GET /api/runs lists '
                             'the runs served')
        return folder

    def run(self, run_id: str) -> Run:
        """The :class:`~tsneviz.rundir.Run` of an id, re-read when changed.

        Parsing ``samples.csv`` takes time on big runs, so a run is kept
        until its ``run.json`` or ``samples.csv`` changes (clustering adds a
        column, for example).

        Raises:
            UnknownRun: No such run.
            BrokenRun: Its files cannot be read as a run.
        """
        folder = self.path(run_id)
        stamp = tuple(_stamp(osp.join(folder, name))
                      for name in (MANIFEST, TABLE))
        with self._lock:
            cached = self._runs.get(run_id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        run = _checked(run_id, folder)
        with self._lock:
            self._runs[run_id] = (stamp, run)
        return run


def _checked(run_id: str, folder: str) -> Run:
    """``Run(folder)``, or :class:`BrokenRun` saying what is wrong."""
    try:
        run = Run(folder)
        if not isinstance(run.manifest, dict):
            raise ValueError(f'{MANIFEST} is not a JSON object')
        n = len(run)
        missing = [c for c in _COLUMNS if c not in run.table]
        if missing:
            raise ValueError(f'{TABLE} has no {", ".join(missing)} column')
        if len(run.table['index']) != n:
            raise ValueError(f'{TABLE} has {len(run.table["index"])} rows, '
                             f'{MANIFEST} says {n} samples')
    except UserError as err:
        raise BrokenRun(f'run {run_id!r} is broken: {err}') from None
    except Exception as err:  # any unreadable content: say which
        raise BrokenRun(f'run {run_id!r} is broken: {type(err).__name__}: '
                        f'{err}') from None
    return run


def _stamp(path: str) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        return (None, None)
    return (st.st_mtime_ns, st.st_size)
