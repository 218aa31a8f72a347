"""What every route shares: the settings and state of one server.

:func:`~tsneviz.server.app.create_app` builds one :class:`ServerState`
and keeps it on ``app.state.server``; a route asks for it with the
dependency :data:`ServerDep` (``srv: ServerDep``), so routers need no
closure over ``create_app``'s variables and can live in modules of their
own (:mod:`tsneviz.server.routes`).
"""
import os
import os.path as osp
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any, Dict, List, Optional, Sequence

from fastapi import Depends, Request

from tsneviz import rundir
from tsneviz.rundir import Run
from tsneviz.server import models as m
from tsneviz.server.errors import Forbidden, NotFound
from tsneviz.server.images import dataset_root
from tsneviz.server.jobs import JobManager
from tsneviz.server.runs import RunIndex
from tsneviz.server.security import relative_name, strip_paths

__all__ = ['ServerSettings', 'ServerState', 'server_state', 'ServerDep',
           'ERRORS', 'EXPLORER', 'message']

#: The explorer page of a run directory.
EXPLORER = rundir.EXPLORER_PAGE
#: ``responses=`` of every API route: each error is an :class:`m.Error`.
ERRORS = {s: {'model': m.Error} for s in (400, 401, 403, 404, 408, 409,
                                          413, 422, 429)}


def message(err) -> str:
    """An error's text on one line (a JSON detail has no line breaks)."""
    return ' '.join(str(err).split())


@dataclass(frozen=True)
class ServerSettings:
    """How a server was started: the arguments of ``create_app``.

    Args:
        root (str): The served run directory or work dir.
        configs_dir (str, optional): Folder of job configs; None: no jobs.
        checkpoints_dir (str, optional): Folder of job checkpoints.
        token (str, optional): Required on every request when set.
        max_body_bytes (int): Larger request bodies get 413.
        data_dirs (tuple[str]): Folders a job's dataset may be in, and
            run images are served from (when any are given).
        max_jobs (int): Jobs run at a time.
        max_queue (int): Jobs that may wait; more get 429.
        body_timeout (float): Seconds a request body may take; then 408.
        max_selections (int): Most selections per run; more get 409.
        max_selection_bytes (int): Most bytes of selections per run.
    """

    root: str
    configs_dir: Optional[str]
    checkpoints_dir: Optional[str]
    token: Optional[str]
    max_body_bytes: int
    data_dirs: Sequence[str]
    max_jobs: int
    max_queue: int
    body_timeout: float
    max_selections: int
    max_selection_bytes: int


@dataclass
class ServerState:
    """The objects routes share, made once per application.

    Args:
        settings (ServerSettings): How the server was started.
        runs (RunIndex): The runs served.
        jobs (JobManager): The job queue.

    Examples:
        >>> srv = create_app('work_dirs').state.server
        >>> srv.scrub(srv.runs.root + '/a/run.json is broken')
        '<root>/a/run.json is broken'
    """

    settings: ServerSettings
    runs: RunIndex
    jobs: JobManager
    _folders: Dict[Optional[str], str] = field(init=False, repr=False)
    _locks: Dict[str, threading.Lock] = field(init=False, repr=False,
                                              default_factory=dict)
    _locks_guard: threading.Lock = field(init=False, repr=False,
                                         default_factory=threading.Lock)

    def __post_init__(self):
        s = self.settings
        # error messages name these folders by label, never by path
        self._folders = {
            self.runs.root: '<root>', s.configs_dir: '<configs-dir>',
            s.checkpoints_dir: '<checkpoints-dir>', os.getcwd(): '<cwd>',
            **{d: '<data-dir>' for d in s.data_dirs}}

    def scrub(self, text: Optional[str]) -> Optional[str]:
        """``text`` with the server's folders replaced by their labels."""
        return None if text is None else strip_paths(text, self._folders)

    def run_lock(self, key: str) -> threading.Lock:
        """The lock of one run (or of one of its resources, by key).

        Steps that rewrite run.json (splits, explorer) run one at a time
        per run: ``update_manifest`` is read-modify-write.
        """
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def run(self, run_id: str) -> Run:
        """The run of an id (404 when unknown, 409 when it is broken)."""
        return self.runs.run(run_id)

    @staticmethod
    def position(run: Run, index: int) -> int:
        """``index`` checked as a sample position of ``run`` (else 404)."""
        if not 0 <= index < len(run):
            raise NotFound(f'sample {index} is out of range: the run has '
                           f'{len(run)} samples (positions 0..'
                           f'{len(run) - 1})')
        return index

    def summary(self, run_id: str) -> m.RunSummary:
        """The listing entry of a run (its paths as names, see
        :func:`~tsneviz.server.security.relative_name`)."""
        run = self.run(run_id)
        man = run.manifest
        config = man.get('config')
        pending = rundir.pending_steps(man)
        failed = rundir.failed_steps(man)
        return m.RunSummary(
            id=run_id, path=relative_name(run.path, self.runs.root),
            created=man.get('created'),
            config=relative_name(config, self.settings.configs_dir)
            if isinstance(config, str) else None,
            n_samples=len(run), keys=run.keys,
            classes=[str(c) for c in run.classes] if run.classes else None,
            clustered=run.has(rundir.CLUSTERS),
            has_explorer=osp.isfile(osp.join(run.path, EXPLORER)),
            explorer_url=f'/runs/{run_id}/',
            complete=not (pending or failed), pending_steps=pending,
            failed_steps=failed)

    def public_job(self, job: dict) -> dict:
        """A job record as sent: its run folder relative to the root, and
        its error naming no server path."""
        return dict(job, error=self.scrub(job.get('error')),
                    run_dir=relative_name(job.get('run_dir'),
                                          self.runs.root))

    def public_samples(self, run: Run, samples: List[dict]) -> List[dict]:
        """Samples as sent: each ``img_path`` relative to the run's dataset
        root (an image elsewhere by its file name only)."""
        root = _image_root(run)
        return [dict(s, img_path=relative_name(s['img_path'], root))
                for s in samples]

    def public_manifest(self, run: Run) -> dict:
        """``run.json`` as served: its paths named as error messages name
        them (:meth:`scrub`), with the run's own folder as ``.`` and its
        dataset root as ``<data-root>``."""
        folders = {**self._folders, _image_root(run): '<data-root>',
                   run.path: '.'}

        def public(value: Any) -> Any:
            if isinstance(value, str):
                return strip_paths(value, folders)
            if isinstance(value, dict):
                return {k: public(v) for k, v in value.items()}
            if isinstance(value, list):
                return [public(v) for v in value]
            return value

        return public(run.manifest)


def _image_root(run: Run) -> Optional[str]:
    # where a run's images are named from; None: it records none
    try:
        return dataset_root(run)
    except Forbidden:
        return None


async def server_state(request: Request) -> ServerState:
    """Dependency: the :class:`ServerState` of the app serving a request.

    ``async``: it only reads an attribute, so it need not take a thread
    from the pool as a plain function dependency would.
    """
    return request.app.state.server


#: A route parameter ``srv: ServerDep`` receives the :class:`ServerState`.
ServerDep = Annotated[ServerState, Depends(server_state)]
