"""The analysis steps that follow a run, and :func:`analyze_run`.

Each step is an entry of :data:`tsneviz.registry.ANALYSIS_STEPS` under its
``--analysis`` name: a subclass of :class:`AnalysisStep` that says when it
runs (``order``), which tool runs it again on its own (``tool``, used in the
message of a step that failed) and whether it needs the images. Each reads
the run directory back and adds its files; ``run.json`` records every
step's outcome (:func:`tsneviz.rundir.record_analysis`).
"""
import time
import traceback
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from tsneviz import rundir
from tsneviz.errors import UserError
from tsneviz.registry import ANALYSIS_STEPS, registered

__all__ = ['AnalysisStep', 'StepContext', 'analysis_steps', 'analyze_run']


@dataclass
class StepContext:
    """What a step may use besides the run directory.

    Attributes:
        seed (int): Seed of anything random (the clustering). Defaults to 0.
        show_progress (bool): Draw progress bars. Defaults to True.
        logger (MMLogger, optional): The run's logger. Defaults to None.
    """

    seed: int = 0
    show_progress: bool = True
    logger: Any = None


class AnalysisStep:
    """One analysis step; register a subclass in ``ANALYSIS_STEPS``.

    Attributes:
        order (int): Steps run by ascending order (a report after the
            clusters it reports). Defaults to 100.
        tool (str, optional): The ``tools/`` script that runs it again
            (``tools/<tool> RUN_DIR``); None: through :func:`analyze_run`.
        needs_images (bool): Left out of the default steps of a run
            without images. Defaults to False.
        default (bool): Runs when no steps are named (``--analysis`` not
            given); False: only when named. Defaults to True.

    Examples:
        >>> @ANALYSIS_STEPS.register_module(name='count')
        ... class CountStep(AnalysisStep):
        ...     order = 60
        ...     def run(self, run_dir, context):
        ...         print(len(rundir.Run(run_dir)))
    """

    order = 100
    tool: Optional[str] = None
    needs_images = False
    default = True

    def run(self, run_dir: str, context: StepContext) -> Optional[str]:
        """Do the step; return why it was skipped, or None when it ran."""
        raise NotImplementedError


@ANALYSIS_STEPS.register_module(name='views')
class ViewsStep(AnalysisStep):
    """The label, errors or prediction plots (``feat_<key>_<view>.png``)."""

    order, tool = 10, 'views.py'

    def run(self, run_dir, context):
        from tsneviz.visualization import render_views
        render_views(run_dir)


@ANALYSIS_STEPS.register_module(name='neighbors')
class NeighborsStep(AnalysisStep):
    """The 20 nearest neighbours of every sample (``neighbors_<key>.npz``).

    A run writes its shared neighbour graph there already (at least 20
    columns), so this step only checks it is there; it searches (exact,
    cosine) for runs made before the shared graph.

    No tool of its own: ``tools/neighbors.py`` queries one sample.
    """

    order = 20

    def run(self, run_dir, context):
        from tsneviz.analysis import compute_neighbors
        manifest = rundir.read_manifest(run_dir)
        k = min(20, int(manifest['n_samples']) - 1)
        stored = manifest.get('neighbors') or {}
        # the first key, as ever (compute_neighbors' default)
        key = (manifest.get('extraction', {}).get('keys') or [None])[0]
        # A run since the shared graph stores its neighbours once, while it
        # is made (neighbor_graph in run.json): then there is nothing to
        # search again. Older runs, or a graph with too few columns, get
        # the exact search.
        if key in stored and stored[key].get('k', 0) >= k:
            return
        compute_neighbors(run_dir, k=k, key=key,
                          show_progress=context.show_progress)


@ANALYSIS_STEPS.register_module(name='clusters')
class ClustersStep(AnalysisStep):
    """Clusters ranked by loss (``clusters.csv``, a ``cluster`` column)."""

    order, tool = 30, 'cluster.py'

    def run(self, run_dir, context):
        from tsneviz.analysis import cluster_run
        cluster_run(run_dir, seed=context.seed)


@ANALYSIS_STEPS.register_module(name='label_issues')
class LabelIssuesStep(AnalysisStep):
    """Suspected label errors (``label_quality``, ``label_issue`` columns).

    Runs by default: it is cheap (the stored neighbours or the logits), and
    comes before the report, which lists the suspects.
    """

    order, tool = 35, 'label_issues.py'

    def run(self, run_dir, context):
        from tsneviz.analysis.label_issues import find_label_issues
        find_label_issues(run_dir, logger=context.logger,
                          show_progress=context.show_progress)


@ANALYSIS_STEPS.register_module(name='reliability')
class ReliabilityStep(AnalysisStep):
    """Where the map can be trusted (a ``map_reliability`` column).

    Runs by default: it reads the shared neighbour graph, searches only the
    2-D map (a KD-tree) and comes after the clusters, whose regions it
    ranks, and before the report, which lists them.
    """

    order, tool = 37, 'reliability.py'

    def run(self, run_dir, context):
        from tsneviz.analysis.reliability import measure_reliability
        if int(rundir.read_manifest(run_dir)['n_samples']) < 3:
            return 'fewer than 3 samples: no neighbourhoods to compare'
        measure_reliability(run_dir)


@ANALYSIS_STEPS.register_module(name='report')
class ReportStep(AnalysisStep):
    """``report.md`` and ``report.html``: metrics, worst classes, plots."""

    order, tool = 40, 'report.py'

    def run(self, run_dir, context):
        from tsneviz.report import write_report
        write_report(run_dir)


@ANALYSIS_STEPS.register_module(name='explorer')
class ExplorerStep(AnalysisStep):
    """``index.html``, the interactive explorer, with its thumbnails."""

    order, tool, needs_images = 50, 'explore.py', True

    def run(self, run_dir, context):
        try:
            from tsneviz.explorer import write_explorer
        except ImportError:  # bokeh is an optional extra
            return 'bokeh is not installed: pip install bokeh'
        write_explorer(run_dir)


def analysis_steps(with_images: bool = True,
                   defaults_only: bool = False) -> List[str]:
    """The registered step names in the order they run.

    Args:
        with_images (bool): False leaves out the steps that need images.
            Defaults to True.
        defaults_only (bool): Only the steps that run when none are named.
            Defaults to False.

    Returns:
        list[str]: e.g. ``['views', 'neighbors', 'clusters',
        'label_issues', 'report', 'explorer']``.

    Examples:
        >>> analysis_steps(with_images=False)[-1]
        'report'
    """
    steps = registered(ANALYSIS_STEPS)
    names = sorted(steps, key=lambda name: steps[name].order)
    return [name for name in names
            if (with_images or not steps[name].needs_images) and
            (steps[name].default or not defaults_only)]


def analyze_run(run_dir: str, steps: Optional[Sequence[str]] = None,
                logger=None, seed: int = 0,
                show_progress: bool = True) -> List[str]:
    """Views, neighbours, clusters, label issues, report and explorer of a run.

    Each step runs even when an earlier one failed, and ``run.json``
    records every step's outcome under ``analysis`` (``pending`` before it
    runs, then ``ok`` with its seconds, ``skipped`` with the reason, or
    ``failed`` with the error). A run directory is thus never taken for
    more complete than it is, and a failed step is named, with the command
    that runs it again.

    Args:
        run_dir (str): A complete run directory.
        steps (Sequence[str], optional): Names of ``ANALYSIS_STEPS`` to
            run, in any order (they run in theirs). Defaults to None, the
            default ones (all that ship with tsneviz).
        logger (MMLogger, optional): Where progress is logged.
        seed (int): Seed of the clustering. Defaults to 0.
        show_progress (bool): Draw progress bars. Defaults to True.

    Returns:
        list[str]: The steps that ran and succeeded.

    Raises:
        AnalysisFailed: After all steps, when any of them failed (a
            one-line :class:`UserError`, exit status 3): the run itself
            is complete.
        AnalysisInterrupted: On Ctrl-C during a step (a
            ``KeyboardInterrupt``): its message names the steps left
            ``pending`` and the commands that finish them.

    Examples:
        >>> analyze_run(run_dir, steps=('views', 'clusters'))
        ['views', 'clusters']
    """
    known = analysis_steps()
    steps = analysis_steps(defaults_only=True) if steps is None else steps
    unknown = sorted(set(steps) - set(known))
    if unknown:
        raise UserError(f'unknown analysis {", ".join(unknown)}; choose '
                        f'from {", ".join(known)}')
    wanted = [step for step in known if step in steps]
    if not wanted:
        return []
    # Marked pending first: a run killed during its analysis says so.
    rundir.record_analysis(run_dir, {s: dict(status='pending')
                                     for s in wanted})
    context = StepContext(seed, show_progress, logger)
    done, failed = [], []
    try:
        for step in wanted:
            outcome = _run_step(step, run_dir, context)
            if outcome['status'] == 'ok':
                done.append(step)
            elif outcome['status'] == 'failed':
                failed.append((step, outcome['error']))
            rundir.record_analysis(run_dir, {step: outcome})
    except KeyboardInterrupt:
        raise _interrupted(step, run_dir, logger) from None
    if failed:
        raise _failure(failed, run_dir)
    return done


def _run_step(step: str, run_dir: str, context: StepContext) -> dict:
    """Run one step and return its outcome, as ``run.json`` records it."""
    logger = context.logger
    started = time.perf_counter()
    try:
        skipped = ANALYSIS_STEPS.get(step)().run(run_dir, context)
    except Exception as err:  # one step's failure must not hide others
        reason = ' '.join(str(err).split()) or type(err).__name__
        if not isinstance(err, UserError):
            reason = f'{type(err).__name__}: {reason}'
        outcome = dict(status='failed', error=reason,
                       seconds=round(time.perf_counter() - started, 3))
        if not isinstance(err, UserError):
            # a bug: keep where it happened, in run.json, not on the
            # terminal (the CLI prints one line)
            outcome['traceback'] = traceback.format_exc()
        if logger is not None:
            logger.error(f'{step} failed: {reason}')
        return outcome
    seconds = round(time.perf_counter() - started, 3)
    if skipped:
        if logger is not None:
            logger.warning(f'{step} skipped: {skipped}')
        return dict(status='skipped', reason=skipped)
    if logger is not None:
        logger.info(f'{step}: {seconds:.1f} s')
    return dict(status='ok', seconds=seconds)


def _interrupted(step: str, run_dir: str,
                 logger=None) -> 'rundir.AnalysisInterrupted':
    """The one line after Ctrl-C: the run is usable, and how to finish it.

    The steps named are those ``run.json`` still records as pending,
    which is what the server lists (``pending_steps``).
    """
    pending = rundir.pending_steps(rundir.read_manifest(run_dir)) or [step]
    names = ', '.join(f"'{s}'" for s in pending)
    commands = '; '.join(rundir.step_command(s, run_dir) for s in pending)
    several = len(pending) > 1
    message = (f"interrupted during the analysis step '{step}': the run "
               f'{run_dir} is complete and usable, with the step'
               f'{"s" if several else ""} {names} left pending in run.json; '
               f'finish {"them" if several else "it"} with {commands}')
    if logger is not None:
        logger.warning(message)
    return rundir.AnalysisInterrupted(message)


def _failure(failed, run_dir: str) -> 'rundir.AnalysisFailed':
    """The one-line error that names each failed step and its command."""
    names = [f"'{step}'" for step, _ in failed]
    names = ' and '.join([', '.join(names[:-1]), names[-1]]
                         if len(names) > 1 else names)
    reasons = '; '.join(f'{step}: {reason}' for step, reason in failed) \
        if len(failed) > 1 else failed[0][1]
    commands = '; '.join(rundir.step_command(step, run_dir)
                         for step, _ in failed)
    return rundir.AnalysisFailed(
        f'analysis step{"s" if len(failed) > 1 else ""} {names} failed: '
        f'{reasons}; the layout and features in {run_dir} are '
        f'complete (run.json records each step); re-run '
        f'{"them" if len(failed) > 1 else "it"} with {commands}')
