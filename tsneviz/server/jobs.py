"""Extraction + t-SNE runs started over HTTP, one at a time, in a thread.

A job is :func:`tsneviz.apis.run_vis_tsne` with arguments from a request,
under three rules, because a config is Python that the server executes and
a checkpoint a pickle it loads:

- the config is a name RELATIVE to the configs directory given at start-up
  and must resolve (symlinks followed) inside it;
- the checkpoint likewise, inside the checkpoints directory, and it is
  always loaded safely (``trust_checkpoint=False``): the API cannot turn
  on pickle's code execution;
- ``cfg_options`` may only set the keys in :data:`ALLOWED_OPTIONS` (where
  the data is and how it is loaded): anything else could change what the
  config builds, e.g. ``custom_imports``.

Runs go to ``<root>/<config name>/tsne_<timestamp>/`` (the reference's
``work_dirs/<config name>`` layout), so the server finds them as runs. Jobs
live in memory: a restart forgets them, not their run directories.
"""
import glob
import os.path as osp
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Optional

from tsneviz.errors import UserError
from tsneviz.server.security import Forbidden, resolve_inside

__all__ = ['ALLOWED_OPTIONS', 'JobManager', 'UnknownJob']

#: ``cfg_options`` keys a job may set.
ALLOWED_OPTIONS = frozenset({
    'test_dataloader.dataset.data_root',
    'test_dataloader.dataset.data_prefix',
    'test_dataloader.dataset.data_prefix.img_path',
    'test_dataloader.dataset.ann_file',
    'test_dataloader.dataset.with_label',
    'test_dataloader.batch_size',
    'test_dataloader.num_workers',
    'test_dataloader.persistent_workers',
})


class UnknownJob(UserError):
    """A job id the server does not know (404)."""


def _now() -> str:
    return time.strftime('%Y-%m-%dT%H:%M:%S%z')


class JobManager:
    """Starts jobs on a single worker thread and reports on them.

    Args:
        work_root (str | None): Folder under which runs are written; None
            disables jobs (the server serves a single run).
        configs_dir (str | None): The only place configs come from.
        checkpoints_dir (str | None): The only place checkpoints come from.
        on_done (callable, optional): ``on_done(run_dir) -> run id``.

    Examples:
        >>> jobs = JobManager('work_dirs', 'configs', 'checkpoints')
        >>> job = jobs.submit({'config': 'digits/resnet18-slim_digits.py',
        ...                    'max_num_samples': 3})
        >>> jobs.get(job['id'])['state']
        'queued'
    """

    def __init__(self, work_root: Optional[str], configs_dir: Optional[str],
                 checkpoints_dir: Optional[str], on_done=None):
        self.work_root = work_root
        self.configs_dir = configs_dir
        self.checkpoints_dir = checkpoints_dir
        self.on_done = on_done or (lambda run_dir: None)
        self._jobs: Dict[str, dict] = {}
        self._lock = threading.Lock()
        # One worker: a run already uses every core, and one at a time keeps
        # mmengine's global registries and scopes free of races.
        self._pool = ThreadPoolExecutor(max_workers=1,
                                        thread_name_prefix='tsneviz-job')

    def _check(self, request: dict) -> dict:
        if self.work_root is None:
            raise UserError('jobs are disabled: the server serves a single '
                            'run; start it on a work dir to run jobs')
        config = resolve_inside(request['config'], self.configs_dir,
                                'config', '--configs-dir')
        if not config.endswith('.py'):
            raise UserError(f'config {request["config"]!r} is not a .py '
                            'config file')
        checkpoint = None
        if request.get('checkpoint'):
            checkpoint = resolve_inside(request['checkpoint'],
                                        self.checkpoints_dir, 'checkpoint',
                                        '--checkpoints-dir')
        options = dict(request.get('cfg_options') or {})
        refused = sorted(set(options) - ALLOWED_OPTIONS)
        if refused:
            raise Forbidden(f'cfg_options {", ".join(refused)} may not be '
                            'set over the API; allowed: '
                            f'{", ".join(sorted(ALLOWED_OPTIONS))}')
        return dict(config=config, checkpoint=checkpoint,
                    cfg_options=options)

    def submit(self, request: dict) -> dict:
        """Check a request (403/400 on refusal) and queue it; the job.

        Args:
            request (dict): A :class:`~tsneviz.server.models.JobIn` as dict.
        """
        checked = self._check(request)
        job_id = uuid.uuid4().hex[:16]
        name = osp.splitext(osp.basename(checked['config']))[0]
        job = dict(id=job_id, state='queued', config=request['config'],
                   checkpoint=request.get('checkpoint'), created=_now(),
                   started=None, finished=None, run=None, run_dir=None,
                   error=None, _t0=None, _t1=None,
                   _work_dir=osp.join(self.work_root, name))
        with self._lock:
            self._jobs[job_id] = job
        self._pool.submit(self._run, job, request, checked)
        return self.get(job_id)

    def _run(self, job: dict, request: dict, checked: dict) -> None:
        from tsneviz.apis import run_vis_tsne

        with self._lock:
            job.update(state='running', started=_now(),
                       _t0=time.monotonic())
        tsne = {k: v for k, v in (request.get('tsne') or {}).items()
                if v is not None}
        try:
            run_dir = run_vis_tsne(
                checked['config'], checked['checkpoint'],
                work_dir=job['_work_dir'],
                vis_stage=request.get('vis_stage'),
                class_idx=request.get('class_idx'),
                max_num_class=request.get('max_num_class', 20),
                max_num_samples=request.get('max_num_samples', 100),
                cfg_options=checked['cfg_options'] or None,
                tsne=tsne, seed=request.get('seed'),
                sampling=request.get('sampling', 'random'),
                batch_size=request.get('batch_size'),
                num_workers=request.get('num_workers'),
                token_pool=request.get('token_pool', 'mean'),
                trust_checkpoint=False, show=False, show_progress=False,
                argv=['POST /api/jobs'])
            run_id = self.on_done(run_dir)
            update = dict(state='done', run_dir=run_dir, run=run_id)
        except UserError as err:
            update = dict(state='failed', error=' '.join(str(err).split()))
        except Exception as err:  # a bug: keep the traceback for the log
            traceback.print_exc()
            update = dict(state='failed',
                          error=f'{type(err).__name__}: {err}')
        with self._lock:
            job.update(update, finished=_now(), _t1=time.monotonic())

    def get(self, job_id: str) -> dict:
        """A job as :class:`~tsneviz.server.models.Job` fields."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise UnknownJob(f'unknown job {job_id!r}')
            job = dict(job)
        t0, t1 = job.pop('_t0'), job.pop('_t1')
        work_dir = job.pop('_work_dir')
        if t0 is not None:
            job['elapsed_s'] = round((t1 or time.monotonic()) - t0, 3)
        if job['state'] == 'running':
            job['progress'] = _last_log_line(work_dir, t0)
        return job


def _last_log_line(work_dir: str, since: float) -> Optional[str]:
    """Last line of the newest ``tsne.log`` under ``work_dir``.

    ``run_vis_tsne`` reports its phases to that log; reading it tells the
    phase without a hook into the run.
    """
    started = time.time() - (time.monotonic() - since)
    logs = [p for p in glob.glob(osp.join(work_dir, 'tsne_*', 'tsne.log'))
            if osp.getmtime(p) >= started - 1]
    if not logs:
        return None
    try:
        with open(max(logs, key=osp.getmtime), 'rb') as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().decode('utf-8', 'replace').strip().splitlines()
    except OSError:
        return None
    return lines[-1][-500:] if lines else None
