"""Extraction + t-SNE runs started over HTTP: a bounded queue of processes.

A job is :func:`tsneviz.apis.run_vis_tsne` with arguments from a request
checked by :func:`tsneviz.server.jobspec.check_job`. It runs in a process
of its own (:mod:`tsneviz.server.worker`), in a new process group, so it
can be cancelled (``DELETE /api/jobs/{id}`` terminates the group, data
loader workers included) and stops when the server dies.

Limits: ``max_jobs`` run at a time (default 1: a run already uses every
core, and runs in parallel only slow each other down); at most
``max_queue`` wait, and one more is refused with 429.

Every job is a record ``<state>/jobs/<id>.json``, written atomically on
each change, so jobs survive a restart: one that was queued or running
when its server stopped is ``interrupted`` after it. Runs go to
``<root>/<config name>/tsne_<timestamp>/`` (the reference's
``work_dirs/<config name>`` layout; ``umap_``, ``pca_`` for the other
methods, :func:`~tsneviz.rundir.run_dir_name`), so the server finds them
as runs; ``<root>/<config name>`` must be a real folder, not a symlink
(:func:`~tsneviz.server.security.real_folder`), checked at submission and
again by the worker with the dataset (:mod:`tsneviz.server.worker`).
"""
import collections
import glob
import json
import logging
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Dict, List, Optional

from tsneviz.errors import UserError
from tsneviz.rundir import (
    RUN_DIRS,
    UnsafeFile,
    log_file,
    open_regular,
    write_json,
)
from tsneviz.server.errors import Conflict, Forbidden, TooManyRequests
from tsneviz.server.jobspec import ALLOWED_OPTIONS, check_job
from tsneviz.server.security import real_folder

__all__ = ['ALLOWED_OPTIONS', 'JobManager', 'UnknownJob', 'MAX_QUEUE',
           'STOP_GRACE_S', 'WORK_FOLDER']

#: Default most jobs waiting to run.
MAX_QUEUE = 8
#: Seconds a cancelled job has to stop before its processes are killed.
STOP_GRACE_S = 5.0
#: What the folder a job's runs go to is inside, for messages.
WORK_FOLDER = 'the served folder'
_ID = re.compile(r'[0-9a-f]{16}')
_PUBLIC = ('id', 'state', 'config', 'checkpoint', 'created', 'started',
           'finished', 'run', 'run_dir', 'error')
_PACKAGE_PARENT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__))))
log = logging.getLogger('tsneviz.server')


class UnknownJob(UserError):
    """A job id the server does not know (404)."""


def _now() -> str:
    return time.strftime('%Y-%m-%dT%H:%M:%S%z')


class JobManager:
    """Queues jobs, runs them as processes and reports on them.

    Args:
        work_root (str | None): Folder under which runs are written; None
            disables jobs (the server serves a single run).
        configs_dir (str | None): The only place configs come from; None
            disables jobs.
        checkpoints_dir (str | None): The only place checkpoints come from.
        data_dirs (list[str]): The only folders a job's dataset may be in.
        records_dir (str | None): Where job records are kept; None
            disables jobs.
        on_done (callable, optional): ``on_done(run_dir) -> run id``.
        max_jobs (int): Jobs run at a time. Defaults to 1.
        max_queue (int): Jobs that may wait. Defaults to :data:`MAX_QUEUE`.
        recover (bool): Load the records of earlier servers and mark their
            unfinished jobs ``interrupted`` (only the server holding the
            root's lock should).
        cwd (str, optional): Working directory of jobs. Defaults to the
            current one.

    Examples:
        >>> jobs = JobManager('work_dirs', 'configs', None, ['data'],
        ...                   'work_dirs/.tsneviz/jobs')
        >>> job = jobs.submit({'config': 'digits/resnet18-slim_digits.py',
        ...                    'max_num_samples': 3})
        >>> jobs.get(job['id'])['state']
        'queued'
    """

    def __init__(self, work_root: Optional[str], configs_dir: Optional[str],
                 checkpoints_dir: Optional[str], data_dirs=(),
                 records_dir: Optional[str] = None, on_done=None,
                 max_jobs: int = 1, max_queue: int = MAX_QUEUE,
                 recover: bool = False, cwd: Optional[str] = None):
        self.work_root = work_root
        self.configs_dir = configs_dir
        self.checkpoints_dir = checkpoints_dir
        self.data_dirs = [osp.abspath(d) for d in data_dirs]
        self.records_dir = records_dir
        self.on_done = on_done or (lambda run_dir: None)
        self.max_jobs = max(1, int(max_jobs))
        self.max_queue = max(0, int(max_queue))
        self.cwd = osp.abspath(cwd or os.getcwd())
        self._jobs: Dict[str, dict] = {}
        self._queue: 'collections.deque[str]' = collections.deque()
        self._procs: Dict[str, subprocess.Popen] = {}
        self._cond = threading.Condition()
        self._runners: List[threading.Thread] = []
        if recover and records_dir:
            self._recover()

    # ---- records -------------------------------------------------------
    def _path(self, job_id: str, suffix: str = '.json') -> str:
        return osp.join(self.records_dir, job_id + suffix)

    def _save(self, job: dict) -> None:
        write_json(self._path(job['id']),
                   {k: v for k, v in job.items() if k != '_proc'})

    def _recover(self) -> None:
        for path in glob.glob(osp.join(self.records_dir, '*.json')):
            if not _ID.fullmatch(osp.basename(path)[:-5]):
                continue  # specs and results
            try:
                with open(path, encoding='utf-8') as f:
                    job = json.load(f)
                job_id = job['id']
            except (OSError, ValueError, KeyError, TypeError):
                log.warning('unreadable job record %s: ignored', path)
                continue
            if job.get('state') in ('queued', 'running'):
                job.update(state='interrupted', finished=_now(),
                           _t1=time.time(),
                           error=f'the server stopped while the job was '
                           f'{job["state"]}')
                self._save(job)
            self._jobs[job_id] = job

    # ---- requests ------------------------------------------------------
    def submit(self, request: dict) -> dict:
        """Check a request (403/400/422 on refusal) and queue it; the job.

        Args:
            request (dict): A :class:`~tsneviz.server.models.JobIn` as dict.

        Raises:
            TooManyRequests: ``max_queue`` jobs are already waiting.
        """
        if self.work_root is None:
            raise Forbidden('jobs are disabled: the server serves a single '
                            'run; start it on a work dir to run jobs')
        if self.configs_dir is None or self.records_dir is None:
            raise Forbidden('jobs are disabled: start the server with '
                            '--jobs (and --data-dir) to run them')
        with self._cond:
            self._check_room()
        checked = check_job(request, self.configs_dir, self.checkpoints_dir,
                            self.data_dirs, self.cwd)
        job_id = uuid.uuid4().hex[:16]
        name = osp.splitext(osp.basename(checked['config']))[0]
        # refused now when it is a link; the worker makes it (safely)
        real_folder(self.work_root, name, create=False,
                    inside=WORK_FOLDER)
        tsne = {k: v for k, v in (request.get('tsne') or {}).items()
                if v is not None}
        kwargs = dict(
            config=checked['config'], checkpoint=checked['checkpoint'],
            work_dir=osp.join(self.work_root, name),
            vis_stage=request.get('vis_stage'),
            class_idx=request.get('class_idx'),
            max_num_class=request.get('max_num_class', 20),
            max_num_samples=request.get('max_num_samples', 100),
            cfg_options=checked['cfg_options'] or None, tsne=tsne,
            seed=request.get('seed'),
            sampling=request.get('sampling', 'random'),
            batch_size=request.get('batch_size'),
            num_workers=request.get('num_workers'),
            token_pool=request.get('token_pool', 'mean'),
            trust_checkpoint=False, show=False, show_progress=False,
            argv=['POST /api/jobs'])
        job = dict(id=job_id, state='queued', config=request['config'],
                   checkpoint=request.get('checkpoint'), created=_now(),
                   started=None, finished=None, run=None, run_dir=None,
                   error=None, _t0=None, _t1=None, _pid=None,
                   _work_dir=kwargs['work_dir'], _kwargs=kwargs)
        with self._cond:
            self._check_room()  # checking took time: others may have come
            self._jobs[job_id] = job
            self._save(job)
            self._queue.append(job_id)
            self._start_runners()
            self._cond.notify_all()
        return self.get(job_id)

    def _check_room(self) -> None:
        if len(self._queue) >= self.max_queue:
            raise TooManyRequests(
                f'{len(self._queue)} jobs are waiting (the limit): try '
                'again when one has finished, or cancel one (DELETE '
                '/api/jobs/{id})')

    def cancel(self, job_id: str) -> dict:
        """Cancel a queued or running job (its processes are stopped).

        Raises:
            UnknownJob: No such job.
            Conflict: The job has already finished.
        """
        with self._cond:
            job = self._job(job_id)
            if job['state'] == 'queued':
                self._queue.remove(job_id)
                job.update(state='cancelled', finished=_now(),
                           _t1=time.time())
                self._save(job)
                return self._public(job)
            if job['state'] != 'running':
                raise Conflict(f'job {job_id} is already {job["state"]}')
            job['_cancel'] = True
            proc = self._procs.get(job_id)
        if proc is not None:
            _stop(proc)
        with self._cond:
            self._cond.wait_for(lambda: job['state'] != 'running',
                                timeout=STOP_GRACE_S)
            return self._public(job)

    def get(self, job_id: str) -> dict:
        """A job as :class:`~tsneviz.server.models.Job` fields."""
        with self._cond:
            return self._public(self._job(job_id))

    def list(self) -> List[dict]:
        """Every job known, newest first."""
        with self._cond:
            jobs = sorted(self._jobs.values(),
                          key=lambda j: (j['created'], j['id']),
                          reverse=True)
            return [self._public(j) for j in jobs]

    def _job(self, job_id: str) -> dict:
        job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJob(f'unknown job {job_id!r}')
        return job

    def _public(self, job: dict) -> dict:
        out = {k: job.get(k) for k in _PUBLIC}
        t0, t1 = job.get('_t0'), job.get('_t1')
        if t0 is not None:
            out['elapsed_s'] = round((t1 or time.time()) - t0, 3)
        if job['state'] == 'running':
            out['progress'] = _last_log_line(job['_work_dir'], t0)
        return out

    # ---- running -------------------------------------------------------
    def _start_runners(self) -> None:
        while len(self._runners) < self.max_jobs:
            thread = threading.Thread(target=self._runner, daemon=True,
                                      name=f'tsneviz-job-{len(self._runners)}')
            self._runners.append(thread)
            thread.start()

    def _runner(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue)
                job = self._jobs[self._queue.popleft()]
                try:
                    proc = self._spawn(job)
                except OSError as err:
                    job.update(state='failed', finished=_now(),
                               error=f'cannot start the job: {err}')
                    self._save(job)
                    continue
                self._procs[job['id']] = proc
                job.update(state='running', started=_now(),
                           _t0=time.time(), _pid=proc.pid)
                self._save(job)
            proc.wait()
            self._finish(job, proc.returncode)

    def _spawn(self, job: dict) -> subprocess.Popen:
        spec = self._path(job['id'], '.spec.json')
        result = self._path(job['id'], '.result.json')
        write_json(spec, dict(server_pid=os.getpid(), result=result,
                              kwargs=job['_kwargs'],
                              data_dirs=self.data_dirs))
        env = dict(os.environ)
        # the worker imports this tsneviz, installed or not
        env['PYTHONPATH'] = os.pathsep.join(
            [_PACKAGE_PARENT] + [p for p in [env.get('PYTHONPATH')] if p])
        with open(self._path(job['id'], '.log'), 'ab') as out:
            return subprocess.Popen(
                [sys.executable, '-m', 'tsneviz.server.worker', spec],
                cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own group: killed as one

    def _finish(self, job: dict, returncode: int) -> None:
        try:
            with open(self._path(job['id'], '.result.json'),
                      encoding='utf-8') as f:
                result = json.load(f)
        except (OSError, ValueError):
            result = dict(state='failed', error='the job process ended '
                          f'with status {returncode} and no result')
        update = dict(state='failed', error=result.get('error'))
        if job.get('_cancel'):
            update = dict(state='cancelled', error=None)
        elif result.get('state') == 'done':
            run_dir = result.get('run_dir')
            update = dict(state='done', run_dir=run_dir,
                          run=self.on_done(run_dir))
        with self._cond:
            self._procs.pop(job['id'], None)
            job.update(update, finished=_now(), _t1=time.time())
            self._save(job)
            self._cond.notify_all()


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the job's process group; SIGKILL what is left after grace."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(wait)
            # the leader is gone; its data loader workers may not be
            os.killpg(proc.pid, signal.SIGKILL)
        except subprocess.TimeoutExpired:
            continue
        except (ProcessLookupError, PermissionError):
            pass
        return


def _last_log_line(work_dir: str, since: Optional[float]) -> Optional[str]:
    """Last line of the newest run log (``<method>.log``) under ``work_dir``.

    ``run_vis_tsne`` reports its phases to that log; reading it tells the
    phase without a hook into the run.
    """
    if since is None:
        return None
    logs = []
    # any layout's log: tsne.log, umap.log, pca.log (rundir.log_file)
    for path in glob.glob(osp.join(glob.escape(work_dir), RUN_DIRS,
                                   log_file('*'))):
        try:
            mtime = osp.getmtime(path)
        except OSError:
            continue  # a failed run removed its directory meanwhile
        if mtime >= since - 1:
            logs.append((mtime, path))
    if not logs:
        return None
    try:
        # the work dir may be shared: a log there may be a FIFO or a link
        with open_regular(max(logs)[1], inside=work_dir) as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().decode('utf-8', 'replace').strip().splitlines()
    except (OSError, UnsafeFile):
        return None
    return lines[-1][-500:] if lines else None
