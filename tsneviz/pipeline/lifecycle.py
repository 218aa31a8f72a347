"""A run's lifecycle: its directory and log, timings, its layout reducer.

Every entry point (:func:`~tsneviz.pipeline.run_vis_tsne`,
``run_features``, ``run_module``) opens its run with :func:`open_run`, the
one place that creates a run directory and its logger, and removes the
directory again when the run fails before ``run.json`` is written.
"""
import contextlib
import os.path as osp
import shutil
import sys
import time
from typing import Dict, Optional, Tuple

from tsneviz import rundir


class Timer:
    """Phase timings of a run, as recorded in run.json's ``timings``.

    Examples:
        >>> timer = Timer()
        >>> timer.lap('config')
        >>> list(timer.timings)
        ['config']
    """

    def __init__(self):
        self.started = time.perf_counter()
        self._last = self.started
        self.timings: Dict[str, float] = {}

    def lap(self, name: str) -> None:
        """Record the time since the last lap (or the start) as ``name``."""
        now = time.perf_counter()
        self.timings[name] = round(now - self._last, 3)
        self._last = now

    def total(self) -> float:
        """Seconds since the start, also recorded as ``total``."""
        self.timings['total'] = round(time.perf_counter() - self.started, 3)
        return self.timings['total']


def print_warning(message: str) -> None:
    """A one-line warning on stderr, before any logger exists."""
    print(f'warning: {message}', file=sys.stderr)


@contextlib.contextmanager
def open_run(work_dir: str, method: str, log_level: str = 'INFO'):
    """A new run directory with its log; removed if the run fails.

    Under a distributed launcher rank 0 creates the directory and the
    other ranks get its path; the log (``<method>.log``,
    :func:`tsneviz.rundir.log_file`) is written by rank 0.

    Args:
        work_dir (str): Where run directories go.
        method (str): The layout method, which names the run directory
            (``<method>_<timestamp>``) and the log.
        log_level (str): Defaults to ``'INFO'``.

    Yields:
        tuple: ``(run_dir, logger)``.

    Raises:
        UserError: One line when the run cannot be written (full disk,
            read-only folder), with no run directory left behind.

    Examples:
        >>> with open_run('work_dirs/x', 'pca') as (run_dir, logger):
        ...     logger.info('hello')  # written to pca_<timestamp>/pca.log
    """
    from mmengine import dist
    from mmengine.logging import MMLogger

    is_main = dist.get_rank() == 0
    timestamp = [time.strftime('%Y%m%d_%H%M%S', time.localtime())]
    dist.broadcast_object_list(timestamp)
    run_dir = None
    try:
        if is_main:
            run_dir = rundir.new_run_dir(work_dir, timestamp[0], method)
        shared = [run_dir]
        dist.broadcast_object_list(shared)
        run_dir = shared[0]
        # one logger per run directory: two runs of one process in the
        # same second must not share a log file
        logger = rundir.quiet_log_file(MMLogger.get_instance(
            f'tsneviz_{osp.abspath(run_dir)}', logger_name='tsneviz',
            log_file=osp.join(run_dir, rundir.log_file(method)),
            log_level=log_level))
        yield run_dir, logger
    except BaseException as err:
        # A run directory without run.json is incomplete by contract; do
        # not leave one behind that a user could mistake for a result.
        if is_main and run_dir is not None and \
                not osp.isfile(osp.join(run_dir, rundir.MANIFEST)):
            shutil.rmtree(run_dir, ignore_errors=True)
        # A full disk or read-only folder while writing the run (the log, a
        # plot, config.py) is the user's to fix: one line, not a traceback.
        user_error = rundir.write_error(err, inside=work_dir)
        if user_error is not None and user_error is not err:
            raise user_error from None
        raise


def layout_reducer(cfg, method: str, layout: Optional[dict],
                   seed: Optional[int]) -> Tuple[object, int]:
    """The reducer from the config's block and the CLI, and the seed.

    Args:
        cfg (Config): The config (an empty one for a plain matrix).
        method (str): The ``--method``.
        layout (dict, optional): The layout flags; None values mean "not
            given".
        seed (int, optional): ``--seed``; None: the block's, else 0.

    Returns:
        tuple: ``(reducer, seed)``.

    Examples:
        >>> reducer, seed = layout_reducer(Config(), 'pca', None, None)
        >>> reducer.name, seed
        ('PCA', 0)
    """
    from tsneviz.config import layout_settings
    from tsneviz.reduction import build_reducer

    settings, ignored = layout_settings(cfg, method, dict(layout or {}))
    for name in ignored:
        print_warning(f'--{name.replace("_", "-")} does not apply to '
                      f'--method {method}; ignored')
    seed = seed if seed is not None else settings.get('seed', 0)
    settings['seed'] = seed
    return build_reducer(method, **settings), seed
