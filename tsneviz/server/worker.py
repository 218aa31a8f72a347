"""One job in its own process: ``python -m tsneviz.server.worker SPEC``.

``SPEC`` is a JSON file written by :class:`~tsneviz.server.jobs.JobManager`:
the arguments of :func:`tsneviz.apis.run_vis_tsne` (already checked), the
server's pid, its data folders and where to write the result. Right before
the run reads, the dataset and the folder the run goes to are checked
again (:func:`~tsneviz.server.jobspec.check_data_again`,
:func:`~tsneviz.server.security.real_folder`): a symlink re-pointed while
the job waited fails the job, with that reason. A process, not a thread, so
that a job can be cancelled (the server terminates its process group, data
loader workers included) and cannot disturb the server's memory.

The result file is JSON ``{"state": "done", "run_dir": ...}`` or
``{"state": "failed", "error": ...}``. SIGTERM (cancel) and the server's
death both stop the run as Ctrl-C would, so ``run_vis_tsne`` removes its
unfinished run directory; a job never outlives its server.
"""
import _thread
import json
import os
import os.path as osp
import signal
import sys
import threading
import time
import traceback

from tsneviz.server.jobs import WORK_FOLDER
from tsneviz.server.jobspec import check_data_again
from tsneviz.server.security import real_folder

__all__ = ['main']

# Seconds between checks that the server is alive, and the grace a run has
# to clean up after it died before the process group is killed.
_POLL_S = 0.5
_GRACE_S = 10.0


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def _watch(server_pid: int) -> None:
    """Stop the run when the server is gone (killed, even with -9)."""
    while os.getppid() == server_pid:
        time.sleep(_POLL_S)
    _thread.interrupt_main()
    time.sleep(_GRACE_S)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _check_again(spec: dict) -> None:
    """What was checked at submission, checked again: links may move."""
    kwargs = spec['kwargs']
    check_data_again(kwargs['config'], kwargs.get('cfg_options'),
                     spec['data_dirs'], os.getcwd())
    work_dir = kwargs['work_dir']
    real_folder(osp.dirname(work_dir), osp.basename(work_dir),
                inside=WORK_FOLDER)


def main(spec_path: str) -> int:
    """Run the job of ``spec_path``; the exit status."""
    from tsneviz.cli import quiet_library_warnings
    from tsneviz.errors import UserError
    from tsneviz.rundir import write_json

    with open(spec_path, encoding='utf-8') as f:
        spec = json.load(f)
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(target=_watch, args=(spec['server_pid'],),
                     daemon=True).start()
    quiet_library_warnings()
    status = 1
    try:
        from tsneviz.apis import run_vis_tsne
        _check_again(spec)
        run_dir = run_vis_tsne(**spec['kwargs'])
        result, status = dict(state='done', run_dir=run_dir), 0
    except UserError as err:
        result = dict(state='failed', error=' '.join(str(err).split()))
    except (KeyboardInterrupt, SystemExit):
        result = dict(state='failed', error='stopped')
    except Exception as err:  # a bug: the traceback goes to the job's log
        traceback.print_exc()
        result = dict(state='failed', error=f'{type(err).__name__}: {err}')
    write_json(spec['result'], result)
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
