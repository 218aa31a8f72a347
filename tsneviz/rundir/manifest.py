"""``run.json``, the manifest of a run, and the run directory itself.

``run.json`` is written last: a directory without it is an incomplete run
(:func:`read_manifest` refuses it). It records the ``format_version`` of
its shape; :func:`upgrade_manifest` is the one place where an older shape
becomes the current one, as it is read. Later steps merge their sections into
it (:func:`update_manifest`), and the analysis steps record their outcome
under ``analysis`` (:func:`record_analysis`).
"""
import contextlib
import glob
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from tsneviz.errors import UserError
from tsneviz.rundir.files import (
    MANIFEST,
    RERUN,
    RUN_DIRS,
    features_file,
    run_dir_name,
)
from tsneviz.rundir.io import (
    MAX_JSON_BYTES,
    UnsafeFile,
    check_array,
    read_regular,
    write_error,
    write_json,
)


def check_work_dir(work_dir: str) -> None:
    """Refuse a ``--work-dir`` that is an existing file, before any work."""
    if osp.exists(work_dir) and not osp.isdir(work_dir):
        raise UserError(f'--work-dir {work_dir} is a file, not a folder; '
                        'pass a folder (it is created if missing)')


def new_run_dir(work_dir: str, timestamp: str, method: str = 'tsne') -> str:
    """Create ``<method>_<timestamp>`` (suffixed if taken), return its path.

    ``tsne_<timestamp>`` for a t-SNE run, as mmpretrain's tool names it
    (:func:`~tsneviz.rundir.files.run_dir_name`).

    Raises:
        UserError: ``work_dir`` is a file, or cannot be written (read-only,
            no permission, disk full).


    """
    check_work_dir(work_dir)
    try:
        os.makedirs(work_dir, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f'cannot create the work dir {work_dir}: a part of '
                        'that path is a file; pass a folder to --work-dir'
                        ) from None
    except OSError as err:
        raise (write_error(err, work_dir) or err) from None
    base = osp.join(work_dir, run_dir_name(method, timestamp))
    path, n = base, 1
    while True:
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            path, n = f'{base}_{n}', n + 1
        except OSError as err:
            raise (write_error(err, path) or err) from None

#: The shape of ``run.json`` this tsneviz writes. Version 0 is every run
#: written before versions were recorded (2026-11-23 to 2026-12-07); 1 adds
#: ``format_version`` itself and always has a ``layout`` section.
FORMAT_VERSION = 1


def upgrade_manifest(manifest: dict, path: str = MANIFEST) -> dict:
    """``run.json`` of any version this tsneviz reads, in the current shape.

    Every reader goes through it (:func:`read_manifest`), so code that
    reads a manifest knows one shape only. A run of a newer tsneviz is
    refused: its meaning is unknown here.

    Version 0 to 1: the runs made before the ``layout`` section (before
    UMAP and PCA) recorded the t-SNE's parameters under ``tsne.params``;
    they get ``layout = {method: 'tsne', params: ...}``.

    Args:
        manifest (dict): A parsed ``run.json`` (changed in place).
        path (str): Its path, for messages.

    Returns:
        dict: The manifest, with ``format_version`` set to
        :data:`FORMAT_VERSION`.

    Raises:
        UserError: A ``format_version`` newer than this tsneviz reads, or
            one that is not a whole number.

    Examples:
        >>> old = {'tsne': {'params': {'perplexity': 30}}}
        >>> upgrade_manifest(old)['layout']
        {'method': 'tsne', 'params': {'perplexity': 30}}
        >>> old['format_version']
        1
    """
    version = manifest.get('format_version', 0)
    if isinstance(version, bool) or not isinstance(version, int) or \
            version < 0:
        raise UserError(f'{path} has format_version {version!r}, not a '
                        f'version of run.json; {RERUN}')
    if version > FORMAT_VERSION:
        raise UserError(f'{path} has format_version {version}, newer than '
                        f'the {FORMAT_VERSION} this tsneviz reads: upgrade '
                        'tsneviz (pip install -U tsneviz) to read this run')
    if version < 1 and not isinstance(manifest.get('layout'), dict):
        tsne = manifest.get('tsne')
        params = tsne.get('params') if isinstance(tsne, dict) else None
        manifest['layout'] = dict(method='tsne', params=dict(params or {}))
    manifest['format_version'] = FORMAT_VERSION
    return manifest


def read_manifest(run_dir: str) -> dict:
    """The ``run.json`` of a complete run; a clear error otherwise.

    Raises:
        UserError: The folder or its ``run.json`` is missing, or
            ``run.json`` is empty, truncated or lacks what every run
            records (``n_samples`` and the feature keys).
    """
    path = osp.join(run_dir, MANIFEST)
    if not osp.isdir(run_dir):
        raise UserError(f'run directory not found: {run_dir}')
    if not osp.isfile(path):
        raise UserError(f'{run_dir} has no {MANIFEST}: it is not a complete '
                        'tsneviz run; run tools/vis_tsne.py again')
    try:
        text = read_regular(path, MAX_JSON_BYTES, run_dir).decode('utf-8')
    except UnsafeFile as err:
        raise UnsafeFile(f'{err}; {RERUN}') from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f'cannot read {path}: {err}; {RERUN}') from None
    if not text.strip():
        raise UserError(f'{path} is empty: the run did not finish; {RERUN}')
    try:
        manifest = json.loads(text)
    except ValueError as err:
        raise UserError(f'{path} is truncated or damaged (not valid JSON: '
                        f'{err}); {RERUN}') from None
    keys = manifest.get('extraction', {}).get('keys') \
        if isinstance(manifest, dict) and \
        isinstance(manifest.get('extraction'), dict) else None
    n = manifest.get('n_samples') if isinstance(manifest, dict) else None
    if not isinstance(keys, list) or not keys or \
            not isinstance(n, int) or n < 0:
        raise UserError(f'{path} is not the manifest of a tsneviz run (it '
                        'lacks n_samples or extraction.keys); ' + RERUN)
    return upgrade_manifest(manifest, path)


def update_manifest(run_dir: str, sections: Optional[dict] = None,
                    outputs: Sequence[str] = ()) -> dict:
    """Merge sections into ``run.json`` and list new outputs; written last.

    Later steps (clusters, neighbours, exports) write their files first and
    then call this, so ``run.json`` stays the last file written and lists
    every output.

    Args:
        run_dir (str): A complete run directory.
        sections (dict, optional): Top-level keys to set, e.g.
            ``{'clusters': {...}}``.
        outputs (Sequence[str]): File names relative to ``run_dir``.

    Returns:
        dict: The new manifest.
    """
    manifest = read_manifest(run_dir)
    manifest.update(sections or {})
    listed = manifest.setdefault('outputs', [])
    listed.extend(o for o in outputs if o not in listed)
    write_json(osp.join(run_dir, MANIFEST), manifest)
    return manifest


def find_cached_run(work_dir: str, feature_key: str) -> Optional[str]:
    """The newest complete run under ``work_dir`` with these features."""
    # any method's runs: a t-SNE run reuses a PCA run's features
    runs = sorted(glob.glob(osp.join(glob.escape(work_dir), RUN_DIRS,
                                     MANIFEST)),
                  key=osp.getmtime, reverse=True)
    for manifest_path in runs:
        try:
            with open(manifest_path, encoding='utf-8') as f:
                manifest = json.load(f)
        except (OSError, ValueError):
            continue
        if manifest.get('extraction', {}).get('feature_key') != feature_key:
            continue
        run_dir = osp.dirname(manifest_path)
        keys = manifest['extraction'].get('keys', [])
        if keys and all(_readable_array(osp.join(run_dir, features_file(k)))
                        for k in keys):
            return run_dir
    return None


def _readable_array(path: str) -> bool:
    # A damaged earlier run must not feed its features into a new one.
    try:
        check_array(path)
    except UserError:
        return False
    return True


# The outcomes ``run.json`` records under ``analysis.<step>.status``.
STEP_STATUSES = ('pending', 'ok', 'skipped', 'failed')


class AnalysisFailed(UserError):
    """An analysis step failed after the run itself was complete.

    Exit status 3, not 2: the run directory is complete and usable (its
    ``run.json`` says which step failed), unlike a bad-input error, which
    leaves no run behind.
    """

    exit_code = 3


class AnalysisInterrupted(KeyboardInterrupt):
    """Ctrl-C during the analysis steps, after the run itself was complete.

    A ``KeyboardInterrupt`` (exit status 130, nothing caught by mistake)
    whose message says that the run is usable and which commands finish
    its steps, left ``pending`` in ``run.json``; the CLI prints it as its
    one line.
    """


@contextlib.contextmanager
def recorded_step(run_dir: str, step: str):
    """Time a re-run of one analysis step and record it as ``ok``.

    The tools that re-run a step (``tools/cluster.py`` and the like) wrap
    their work in it, so a re-run after a failed step replaces its
    ``failed`` entry in ``run.json``; a step that fails again keeps it.

    Examples:
        >>> with recorded_step(run_dir, 'clusters'):
        ...     cluster_run(run_dir)
    """
    started = time.perf_counter()
    yield
    record_analysis(run_dir, {step: dict(
        status='ok', seconds=round(time.perf_counter() - started, 3))})


def record_analysis(run_dir: str, outcomes: Dict[str, dict]) -> dict:
    """Set the outcome of analysis steps in ``run.json``.

    ``run.json``'s ``analysis`` maps each step that was asked for to
    ``{'status': 'pending' | 'ok' | 'skipped' | 'failed', ...}`` with
    ``seconds`` when it ran, ``error`` when it failed and ``reason`` when
    it was skipped. Steps already recorded and not named keep their entry.

    Args:
        run_dir (str): A complete run directory.
        outcomes (dict[str, dict]): Step name to its new entry.

    Returns:
        dict: The new manifest.

    Examples:
        >>> record_analysis(run_dir, {'clusters': {'status': 'ok',
        ...                                        'seconds': 0.4}})
    """
    for step, outcome in outcomes.items():
        if outcome.get('status') not in STEP_STATUSES:
            raise ValueError(f'analysis status of {step!r} must be one of '
                             f'{STEP_STATUSES}, got {outcome!r}')
    manifest = read_manifest(run_dir)
    analysis = dict(manifest.get('analysis') or {})
    analysis.update(outcomes)
    return update_manifest(run_dir, {'analysis': analysis})


def failed_steps(manifest: dict) -> List[str]:
    """The analysis steps that ``run.json`` records as failed."""
    return _steps_with(manifest, 'failed')


def pending_steps(manifest: dict) -> List[str]:
    """The analysis steps that ``run.json`` records as pending.

    Either still running, or cut short (Ctrl-C, a killed process): the run
    is usable, but these steps' files are missing or stale.
    """
    return _steps_with(manifest, 'pending')


def _steps_with(manifest: dict, status: str) -> List[str]:
    analysis = manifest.get('analysis')
    return [step for step, outcome in (
        analysis.items() if isinstance(analysis, dict) else ())
        if isinstance(outcome, dict) and outcome.get('status') == status]
