"""The server's own folder under the served root: job records and a lock.

``<root>/.tsneviz/`` (hidden: run discovery skips it, and run files with a
hidden name are never served) holds ``jobs/<id>.json``, the job records,
and ``server.lock``. The server that holds the lock is the only one on
that root, so it may tidy up after a predecessor that was killed: mark its
unfinished jobs interrupted and remove half-written selections. A second
server on the same root runs without the lock and tidies nothing.
"""
import logging
import os.path as osp
from typing import Optional

from tsneviz.errors import UserError
from tsneviz.server.security import real_folder

__all__ = ['StateDir', 'FOLDER']

FOLDER = '.tsneviz'
log = logging.getLogger('tsneviz.server')


class StateDir:
    """The state folder of a served root.

    Args:
        root (str): The served root (a work dir or a run directory).

    Attributes:
        path (str | None): The folder; None when it cannot be made (a
            read-only root: the server then keeps no job records).
        owner (bool): Whether this process holds the root's lock.

    Examples:
        >>> state = StateDir('work_dirs')
        >>> state.jobs
        'work_dirs/.tsneviz/jobs'
    """

    def __init__(self, root: str):
        self.path: Optional[str] = osp.join(root, FOLDER)
        self.owner = False
        self._lock_file = None
        try:
            # a .tsneviz planted as a link would take the job records
            # (and the specs the workers run) elsewhere
            real_folder(root, f'{FOLDER}/jobs', inside='the served folder')
        except (UserError, OSError) as err:
            log.warning('no state folder %s (%s): jobs are not recorded',
                        self.path, err)
            self.path = None
            return
        self.owner = self._lock()

    @property
    def jobs(self) -> Optional[str]:
        """The job records folder, or None."""
        return None if self.path is None else osp.join(self.path, 'jobs')

    def _lock(self) -> bool:
        try:
            import fcntl
        except ImportError:  # not POSIX: assume one server per root
            return True
        f = open(osp.join(self.path, 'server.lock'), 'a+')
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            log.warning('another server serves %s: not tidying up after '
                        'earlier servers', osp.dirname(self.path))
            return False
        # kept open for the life of the process: closing it would unlock
        self._lock_file = f
        return True
