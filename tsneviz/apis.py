"""Public functions of tsneviz: each step of a run, and the whole run.

A run, as data flows::

    config -> model (safe checkpoint load) -> dataset -> per-class sample
    -> sharded dataloader -> features at a stage (+ logits) -> feat_*.npy
    -> t-SNE -> metrics -> plots + samples.csv -> run.json (last)

``tools/vis_tsne.py`` is a thin shell over :func:`run_vis_tsne`; the steps
are public so the same run can be done from a notebook.
"""
import contextlib
import hashlib
import json
import os.path as osp
import platform
import re
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from tsneviz import __version__
from tsneviz.config import (dataloader_config, layout_settings, load_config,
                            resolve_work_dir)
from tsneviz.data import (UnreadableSampleError, build_dataset, build_loader,
                          dataset_classes, dataset_labels, image_paths,
                          resolve_class_idx, sample_per_class)
from tsneviz.data.paths import absolute
from tsneviz.errors import UserError
from tsneviz.reduction import BaseReducer, build_reducer

__all__ = [
    'Sample', 'build_model', 'sample_dataset', 'extract_features',
    'fit_tsne', 'run_vis_tsne', 'run_features', 'run_module', 'analyze_run',
    'cluster_run', 'compute_neighbors', 'query', 'write_report',
    'compare_runs', 'make_splits', 'export_selection', 'export_run'
]

LAUNCHERS = ('none', 'pytorch', 'slurm')


def __getattr__(name):
    # The tools' functions, re-exported without importing their modules
    # (and their dependencies) until they are used.
    lazy = {'cluster_run': 'tsneviz.analysis.runs',
            'compute_neighbors': 'tsneviz.analysis.neighbors',
            'query': 'tsneviz.analysis.neighbors',
            'write_report': 'tsneviz.report',
            'compare_runs': 'tsneviz.compare',
            'make_splits': 'tsneviz.exporters.splits',
            'export_selection': 'tsneviz.exporters.selection',
            'export_run': 'tsneviz.exporters.base'}
    if name in lazy:
        import importlib
        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


@dataclass
class Sample:
    """The per-class sample of a dataset that a run looks at.

    Attributes:
        dataset: The full mmengine dataset.
        indices (np.ndarray): Chosen dataset indices, sorted.
        labels (np.ndarray): Their ground-truth labels.
        class_idx (list[int]): Classes asked for.
        classes (list[str], optional): Names of all dataset classes.
    """

    dataset: object
    indices: np.ndarray
    labels: np.ndarray
    class_idx: List[int]
    classes: Optional[List[str]]


def _resolve_device(device: Optional[str]) -> str:
    import torch
    from mmengine.device import get_device
    device = device or get_device()
    try:
        parsed = torch.device(device)
    except RuntimeError as err:
        raise UserError(f'unknown --device {device!r}: {err}') from err
    if parsed.type == 'cuda' and not torch.cuda.is_available():
        raise UserError(f'--device {device}: CUDA is not available on this '
                        'machine; use --device cpu')
    return device


def build_model(cfg, checkpoint: Optional[str] = None, device: str = 'cpu',
                trust_checkpoint: bool = False, logger=None, seed: int = 0):
    """Build the config's model and load a checkpoint safely.

    Args:
        cfg (Config): Resolved mmpretrain config.
        checkpoint (str, optional): Checkpoint path; without one the model
            keeps random weights (with a warning). Defaults to None.
        device (str): Torch device. Defaults to ``'cpu'``.
        trust_checkpoint (bool): Allow a full unpickle of the checkpoint,
            which can run code. Defaults to False.
        logger (MMLogger, optional): Where load messages go.
        seed (int): Seed of the random initial weights. Defaults to 0.

    Returns:
        tuple: ``(model, info)``; ``info`` has the checkpoint's path,
        sha256, dataset_meta and missing/unexpected keys.

    Examples:
        >>> model, info = build_model(cfg, 'epoch_20.pth')
        >>> info['sha256'][:8]
        '3f2a9c1e'
    """
    from mmengine.registry import DefaultScope

    from mmpretrain.registry import MODELS
    from tsneviz.checkpoint import (checkpoint_dataset_meta, file_sha256,
                                    load_checkpoint, load_weights)

    import torch

    # Seeded so that a model without a checkpoint has the same random
    # weights on every rank and in every run (and cached features match).
    torch.manual_seed(seed)
    model_cfg = cfg.model.copy()
    model_cfg.setdefault('data_preprocessor',
                         cfg.get('data_preprocessor', None))
    try:
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MODELS.build(model_cfg)
    except KeyError as err:
        raise UserError(f'could not build the model: {err}') from err
    info = dict(path=checkpoint, sha256=None, trusted=trust_checkpoint,
                dataset_meta={}, missing_keys=[], unexpected_keys=[],
                mismatched_keys=[])
    if checkpoint is None:
        if logger is not None:
            logger.warning('no --checkpoint given: the model keeps its '
                           'random initial weights')
    else:
        info['sha256'] = file_sha256(checkpoint)
        state = load_checkpoint(checkpoint, trust=trust_checkpoint)
        info.update(load_weights(model, state, logger=logger))
        info['dataset_meta'] = checkpoint_dataset_meta(state)
    model.to(device)
    model.eval()
    return model, info


def sample_dataset(dataloader_cfg, class_idx: Optional[Sequence[int]] = None,
                   max_num_class: int = 20, max_num_samples: int = 100,
                   sampling: str = 'random', seed: int = 0,
                   fallback_classes: Optional[Sequence[str]] = None
                   ) -> Sample:
    """Build the dataset and choose at most N samples of each class.

    Args:
        dataloader_cfg (ConfigDict): ``test_dataloader`` config.
        class_idx (Sequence[int], optional): Classes; default the first
            ``max_num_class``.
        max_num_class (int): Defaults to 20.
        max_num_samples (int): Cap per class. Defaults to 100.
        sampling (str): ``'random'`` (seeded, stratified) or ``'first'``
            (mmpretrain's choice). Defaults to ``'random'``.
        seed (int): Defaults to 0.
        fallback_classes (Sequence[str], optional): Class names to use when
            the dataset has none (e.g. from the checkpoint's meta).

    Returns:
        Sample: The dataset and chosen indices.

    Examples:
        >>> sample = sample_dataset(cfg.test_dataloader, max_num_samples=10)
        >>> len(sample.indices)
        100
    """
    dataset = build_dataset(dataloader_cfg)
    classes = dataset_classes(dataset, fallback_classes)
    labels = dataset_labels(dataset)
    num_classes = len(classes) if classes is not None else None
    chosen_classes = resolve_class_idx(class_idx, max_num_class, num_classes)
    indices = sample_per_class(labels, chosen_classes, max_num_samples,
                               sampling, seed)
    if len(indices) == 0:
        raise UserError('no samples of the chosen classes '
                        f'{chosen_classes[:10]} in the dataset; check '
                        '--class-idx and the dataset annotations')
    return Sample(dataset, indices, labels[indices], chosen_classes, classes)


def extract_features(model, dataloader, stage: Optional[str] = None,
                     token_pool: str = 'mean', show_progress: bool = True,
                     total: Optional[int] = None):
    """Extract pooled features with a progress bar; see ``extraction``.

    Args:
        model (nn.Module): Model on its device, in eval mode.
        dataloader (Iterable): mmengine-style batches.
        stage (str, optional): Stage or module name. Defaults to None.
        token_pool (str): ``'mean'`` or ``'cls'``. Defaults to ``'mean'``.
        show_progress (bool): Draw a bar. Defaults to True.
        total (int, optional): Samples expected, for the bar.

    Returns:
        Extraction: Features, labels, logits and the taps.
    """
    from tsneviz.extraction import extract, plan_stage
    from tsneviz.progress import progress_bar

    plan_stage(model, stage)  # a bad stage fails before the bar appears
    total = total or len(getattr(dataloader, 'dataset', []))
    with progress_bar('Extracting features', total, show_progress) as bar:
        try:
            return extract(model, dataloader, stage, token_pool,
                           progress=lambda n: bar(advance=n))
        except UnreadableSampleError as err:
            # Across worker processes the message carries the worker's
            # traceback; its last line is ours.
            last = str(err).strip().splitlines()[-1]
            last = re.sub(r'^.*UnreadableSampleError: ', '', last)
            raise UserError(
                f'cannot read image {last}; fix or remove that file '
                '(unreadable images are not skipped, so the sample stays '
                'the one asked for)') from None


def fit_tsne(features: np.ndarray, reducer: BaseReducer,
             description: str = '',
             show_progress: bool = True) -> np.ndarray:
    """Run a t-SNE reducer with a progress bar.

    Args:
        features (np.ndarray): (N, C) features.
        reducer (BaseReducer): From :func:`tsneviz.reduction.build_reducer`
            (t-SNE, UMAP or PCA).
        description (str): Bar label. Defaults to ''.
        show_progress (bool): Draw a bar. Defaults to True.

    Returns:
        np.ndarray: (N, n_components) coordinates.

    Examples:
        >>> coords = fit_tsne(feats, build_reducer('tsne', perplexity=30.))
    """
    from tsneviz.progress import progress_bar

    total = reducer.params.get('n_iter', 1)
    with progress_bar(description or 't-SNE', total, show_progress) as bar:

        def report(done, _total, kl):
            bar(completed=done,
                note='' if kl is None else f'KL {kl:.3f}')

        return reducer.fit_transform(features, progress=report)


def _hash_json(obj) -> str:
    return hashlib.sha256(
        json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def print_warning(message: str) -> None:
    """A one-line warning on stderr, before any logger exists."""
    print(f'warning: {message}', file=sys.stderr)


def _versions() -> Dict[str, str]:
    versions = {'python': platform.python_version(), 'tsneviz': __version__}
    for name in ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmpretrain',
                 'numpy', 'sklearn', 'openTSNE', 'matplotlib'):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                continue
        versions[name] = getattr(module, '__version__', 'unknown')
    return versions


def _load_cached(run_dir: str, manifest: dict) -> dict:
    from tsneviz.rundir import TABLE, read_table
    keys = manifest['extraction']['keys']
    features = {k: np.load(osp.join(run_dir, f'{k}.npy')) for k in keys}
    logits_path = osp.join(run_dir, 'logits.npy')
    table = read_table(osp.join(run_dir, TABLE))
    return dict(
        features=features,
        labels=np.asarray(table['gt_label'], dtype=np.int64),
        logits=np.load(logits_path) if osp.isfile(logits_path) else None,
        model_classes=((manifest.get('label_space') or {}).get('model')
                       or {}).get('names'),
        taps=manifest['extraction']['taps'],
        stage=manifest['extraction']['stage'])


def run_vis_tsne(config: str, checkpoint: Optional[str] = None, *,
                 work_dir: Optional[str] = None,
                 test_cfg: Optional[str] = None,
                 vis_stage: Optional[str] = None,
                 class_idx: Optional[Sequence[int]] = None,
                 max_num_class: int = 20, max_num_samples: int = 100,
                 cfg_options: Optional[dict] = None,
                 device: Optional[str] = None, legend: Optional[bool] = None,
                 show: bool = False, tsne: Optional[dict] = None,
                 seed: Optional[int] = None, sampling: str = 'random',
                 batch_size: Optional[int] = None,
                 num_workers: Optional[int] = None, launcher: str = 'none',
                 token_pool: str = 'mean', trust_checkpoint: bool = False,
                 use_cache: bool = True, show_progress: bool = True,
                 method: str = 'tsne', analysis: Sequence[str] = None,
                 argv: Optional[List[str]] = None) -> Optional[str]:
    """Run extraction, t-SNE, metrics and plots; return the run directory.

    Arguments mirror ``tools/vis_tsne.py``; ``tsne`` holds the layout flags
    (``None`` values mean "not given", so the config's ``tsne`` (or
    ``umap``, ``pca``) block and then the defaults apply). ``method`` picks
    the layout; ``analysis`` the steps of :func:`analyze_run` that follow
    (default all, ``()`` none).

    Returns:
        str | None: The run directory on rank 0, None on other ranks.

    Examples:
        >>> run_dir = run_vis_tsne('configs/digits/resnet18-slim_digits.py',
        ...                        'configs/digits/resnet18-slim_digits.pth',
        ...                        tsne=dict(perplexity=20.0))
        >>> sorted(os.listdir(run_dir))[:3]
        ['config.py', 'feat_3.npy', 'feat_3.png']
    """
    timer = _Timer()
    started, timings, lap = timer.started, timer.timings, timer.lap
    if launcher not in LAUNCHERS:
        raise UserError(f'unknown --launcher {launcher!r}; choose one of '
                        f'{", ".join(LAUNCHERS)}')
    cfg = load_config(config, cfg_options)
    resolve_work_dir(cfg, config, work_dir)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise UserError(f'checkpoint not found: {checkpoint}; pass an '
                        'existing file to --checkpoint')
    reducer, seed = _layout_reducer(cfg, method, tsne, seed)
    loader_cfg = dataloader_config(cfg, test_cfg, cfg_options)
    device = _resolve_device(device)

    from mmengine import dist
    if launcher != 'none':
        _init_distributed(launcher, device)
    rank = dist.get_rank()
    is_main = rank == 0
    t = lap('config', started)

    sample = sample_dataset(loader_cfg, class_idx, max_num_class,
                            max_num_samples, sampling, seed)
    reducer.check_n_samples(len(sample.indices))
    t = lap('dataset', t)

    timestamp = [time.strftime('%Y%m%d_%H%M%S', time.localtime())]
    dist.broadcast_object_list(timestamp)
    run_dir = None
    try:
        from mmengine.logging import MMLogger
        from tsneviz.rundir import quiet_log_file
        if is_main:
            from tsneviz.rundir import new_run_dir
            run_dir = new_run_dir(cfg.work_dir, timestamp[0])
        shared = [run_dir]
        dist.broadcast_object_list(shared)
        run_dir = shared[0]
        # one logger per run directory: two runs of one process in the
        # same second must not share a log file
        logger = quiet_log_file(MMLogger.get_instance(
            f'tsneviz_{osp.abspath(run_dir)}', logger_name='tsneviz',
            log_file=osp.join(run_dir, 'tsne.log') if run_dir else None,
            log_level=cfg.get('log_level', 'INFO')))
        result = _run(cfg, config, checkpoint, sample, loader_cfg, reducer,
                      run_dir, logger, timings, lap, t,
                      dict(vis_stage=vis_stage, token_pool=token_pool,
                           test_cfg=test_cfg,
                           device=device, batch_size=batch_size,
                           num_workers=num_workers, legend=legend, show=show,
                           trust_checkpoint=trust_checkpoint,
                           use_cache=use_cache, seed=seed,
                           sampling=sampling, launcher=launcher,
                           show_progress=show_progress and is_main,
                           method=method,
                           analysis=ANALYSES if analysis is None
                           else tuple(analysis),
                           argv=argv, started=started,
                           max_num_samples=max_num_samples))
        return result
    except BaseException as err:
        # A run directory without run.json is incomplete by contract; do
        # not leave one behind that a user could mistake for a result.
        if is_main and run_dir is not None and \
                not osp.isfile(osp.join(run_dir, 'run.json')):
            shutil.rmtree(run_dir, ignore_errors=True)
        _raise_write_error(err, cfg.work_dir)
        raise


def _run(cfg, config, checkpoint, sample, loader_cfg, reducer, run_dir,
         logger, timings, lap, t, opts) -> Optional[str]:
    from mmengine import dist

    from tsneviz import rundir
    from tsneviz.extraction import gather_rows

    is_main = dist.get_rank() == 0
    if is_main:
        cfg.dump(osp.join(run_dir, 'config.py'))
    n = len(sample.indices)
    # classes asked for but without samples are not in the plot
    n_classes = len(np.unique(sample.labels))
    empty = len(sample.class_idx) - n_classes
    logger.info(f'Apply t-SNE to visualize {n} samples of {n_classes} '
                'classes' + (f' ({empty} of the {len(sample.class_idx)} '
                             'classes asked for have no samples).'
                             if empty > 0 else '.'))

    from tsneviz.checkpoint import file_sha256
    ckpt_sha = file_sha256(checkpoint) if checkpoint else None
    feature_key = _hash_json(dict(
        model=cfg.model.to_dict() if hasattr(cfg.model, 'to_dict')
        else cfg.model,
        dataset=loader_cfg.get('dataset'), checkpoint=ckpt_sha,
        # without a checkpoint the weights are the seeded random init
        init_seed=None if ckpt_sha else opts['seed'],
        # a relative data_root names other images from another folder
        images=absolute(_image_prefix(sample.dataset)),
        stage=opts['vis_stage'], token_pool=opts['token_pool'],
        indices=sample.indices.tolist()))
    cached_from = rundir.find_cached_run(cfg.work_dir, feature_key) \
        if opts['use_cache'] else None
    ckpt_info = dict(path=checkpoint and osp.abspath(checkpoint),
                     sha256=ckpt_sha,
                     trusted=opts['trust_checkpoint'])
    if cached_from is not None:
        logger.info(f'Reusing the features of {cached_from} (same config, '
                    'checkpoint, stage and samples); skipping the model.')
        cached = _load_cached(cached_from, rundir.read_manifest(cached_from))
        features, logits = cached['features'], cached['logits']
        model_classes = cached['model_classes']
        taps, stage = cached['taps'], cached['stage']
        t = lap('features_from_cache', t)
    else:
        model, info = build_model(cfg, checkpoint, opts['device'],
                                  opts['trust_checkpoint'], logger,
                                  seed=opts['seed'])
        ckpt_info.update(missing_keys=info['missing_keys'],
                         unexpected_keys=info['unexpected_keys'],
                         mismatched_keys=info['mismatched_keys'])
        model_classes = _model_classes(cfg, model, info)
        _prefer_channels_last(model, opts['device'])
        t = lap('model', t)
        loader, positions = build_loader(loader_cfg, sample.dataset,
                                         sample.indices, opts['batch_size'],
                                         opts['num_workers'])
        extraction = extract_features(model, loader, opts['vis_stage'],
                                      opts['token_pool'],
                                      opts['show_progress'], total=n)
        local = dict(extraction.features)
        if extraction.logits is not None:
            local['__logits__'] = extraction.logits
        gathered = gather_rows(local, positions, n)
        taps, stage = extraction.describe(), extraction.stage
        t = lap('extraction', t)
        if not is_main:
            return None
        logits = gathered.pop('__logits__', None)
        features = gathered
    if not is_main:
        return None
    manifest = dict(
        config=osp.abspath(config),
        test_cfg=opts['test_cfg'] and osp.abspath(opts['test_cfg']),
        work_dir=osp.abspath(cfg.work_dir),
        checkpoint=ckpt_info,
        sampling=dict(mode=opts['sampling'], class_idx=sample.class_idx,
                      max_num_samples=opts['max_num_samples']),
        # absolute: a relative data_root means "from the folder the run
        # was started in", which later tools need not run from
        data_root=absolute(loader_cfg['dataset'].get('data_root', None)),
        # where img_path values start: annotation files are relative to it
        data_prefix=absolute(_image_prefix(sample.dataset)),
        extraction=dict(stage=stage, requested_stage=opts['vis_stage'],
                        token_pool=opts['token_pool'],
                        device=opts['device'],
                        world_size=dist.get_world_size(),
                        taps=taps, feature_key=feature_key,
                        cached_from=cached_from and osp.abspath(cached_from)))
    return _write_run(
        run_dir, features=features, logits=logits, indices=sample.indices,
        img_paths=image_paths(sample.dataset, sample.indices),
        labels=sample.labels, classes=sample.classes, reducer=reducer,
        stage=stage, manifest=manifest, timings=timings, lap=lap, t=t,
        logger=logger, opts=opts, model_classes=model_classes)


def _model_classes(cfg, model, info) -> Optional[List[str]]:
    """Names of the model's classes: checkpoint, config, model, or None.

    Never the test dataset's: that is the other label space.
    """
    for meta in (info['dataset_meta'], cfg.get('dataset_meta', None),
                 getattr(model, '_dataset_meta', None),
                 getattr(model, 'dataset_meta', None)):
        if isinstance(meta, dict) and meta.get('classes'):
            return [str(c) for c in meta['classes']]
    return None


def _write_run(run_dir, *, features, logits, indices, img_paths, labels,
               classes, reducer, stage, manifest, timings, lap, t, logger,
               opts, model_classes=None) -> str:
    """Everything after extraction: arrays, layouts, metrics, plots, table,
    and ``run.json`` last; then the analysis that reads the run back."""
    from tsneviz import rundir
    from tsneviz.extraction import prediction_columns
    from tsneviz.labels import LabelSpace
    from tsneviz.metrics import separation_metrics
    from tsneviz.visualization import plot_embedding

    n = len(indices)
    space = LabelSpace.build(classes, labels, None if logits is None
                             else logits.shape[1], model_classes)
    if logits is not None:
        logger.info(space.describe())
    names = {int(y): space.dataset_name(y) for y in np.unique(labels)}

    outputs: List[str] = []
    for key, feats in features.items():
        if not np.isfinite(feats).all():
            raise UserError(f'{key} has NaN or Inf values; check the '
                            'checkpoint and the stage')
        outputs.append(osp.basename(
            rundir.write_array(osp.join(run_dir, f'{key}.npy'), feats)))
    if logits is not None:
        outputs.append(osp.basename(
            rundir.write_array(osp.join(run_dir, 'logits.npy'), logits)))

    columns = dict(index=indices, img_path=img_paths, gt_label=labels,
                   gt_class=[space.dataset_name(y) for y in labels])
    if logits is not None:
        # loss only where the truth is a class of the model
        preds = prediction_columns(
            logits, space.to_model(labels) if space.matched else None)
        columns['pred_label'] = preds['pred_label']
        columns['pred_class'] = [space.model_name(y)
                                 for y in preds['pred_label']]
        for name in ('score', 'entropy', 'loss'):
            if name in preds:
                columns[name] = preds[name]

    method = opts.get('method', 'tsne')
    results = {}
    for key, feats in features.items():
        coords = fit_tsne(feats, reducer, f'{reducer.name} {key}',
                          opts['show_progress'])
        t = lap(f'{method}:{key}', t)
        for axis, name in zip(coords.T, 'xyz'):
            columns[f'{key}_{name}'] = axis
        outputs.append(osp.basename(rundir.write_array(
            osp.join(run_dir, f'{method}_{key}.npy'), coords)))
        metrics = {}
        if n >= 3:
            metrics = separation_metrics(feats, coords, labels, k=10,
                                         seed=opts['seed'])
        results[key] = dict(reducer.results(), **metrics)
        t = lap(f'metrics:{key}', t)
        outputs.append(osp.basename(plot_embedding(
            coords, labels, names, osp.join(run_dir, f'{key}.png'),
            title=f'{key} · {stage} · {reducer.describe()}',
            legend=opts['legend'], show=opts['show'])))
        t = lap(f'plot:{key}', t)
        logger.info(f'{key}: ' + ', '.join(
            f'{k} {v:.4f}' if isinstance(v, float) else f'{k} {v}'
            for k, v in results[key].items()
            if isinstance(v, (float, int))))

    outputs.append(osp.basename(rundir.write_table(
        osp.join(run_dir, rundir.TABLE), columns)))
    outputs += [name for name in ('config.py', 'tsne.log')
                if osp.isfile(osp.join(run_dir, name))]
    timings['total'] = round(time.perf_counter() - opts['started'], 3)
    layout = dict(method=method, reducer=reducer.name,
                  params=reducer.params, ignored=reducer.ignored_)
    manifest = dict(
        tsneviz_version=__version__,
        created=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        command=opts['argv'] if opts['argv'] is not None else sys.argv,
        # what relative paths in the command and config are relative to
        cwd=osp.abspath('.'),
        **manifest,
        seed=opts['seed'],
        n_samples=n,
        classes=space.dataset_classes(),
        label_space=space.to_json(),
        layout=layout,
        results=results,
        timings=timings,
        versions=_versions(),
        outputs=outputs)
    manifest['extraction'] = dict(manifest.get('extraction', {}),
                                  stage=stage, keys=list(features),
                                  has_logits=logits is not None)
    if method == 'tsne':
        manifest['tsne'] = dict(backend=reducer.backend,
                                params=reducer.params,
                                ignored=reducer.ignored_)
    rundir.write_json(osp.join(run_dir, rundir.MANIFEST), manifest)
    logger.info(f'Save features and results to {run_dir}')
    analyze_run(run_dir, opts.get('analysis', ANALYSES), logger=logger,
                seed=opts['seed'], show_progress=opts['show_progress'])
    return run_dir


# The steps that run after every run, in this order; each reads the run
# directory back and adds its files (tools/vis_tsne.py --analysis).
ANALYSES = ('views', 'neighbors', 'clusters', 'report', 'explorer')


def analyze_run(run_dir: str, steps: Sequence[str] = ANALYSES, logger=None,
                seed: int = 0, show_progress: bool = True) -> List[str]:
    """Views, neighbours, clusters, report and explorer of a run directory.

    Each step runs even when an earlier one failed, and ``run.json``
    records every step's outcome under ``analysis`` (``pending`` before it
    runs, then ``ok`` with its seconds, ``skipped`` with the reason, or
    ``failed`` with the error). A run directory is thus never taken for
    more complete than it is, and a failed step is named, with the command
    that runs it again.

    Args:
        run_dir (str): A complete run directory.
        steps (Sequence[str]): Which of :data:`ANALYSES` to run. Defaults
            to all of them.
        logger (MMLogger, optional): Where progress is logged.
        seed (int): Seed of the clustering. Defaults to 0.
        show_progress (bool): Draw progress bars. Defaults to True.

    Returns:
        list[str]: The steps that ran and succeeded.

    Raises:
        AnalysisFailed: After all steps, when any of them failed (a
            one-line :class:`UserError`, exit status 3): the run itself
            is complete.

    Examples:
        >>> analyze_run(run_dir, steps=('views', 'clusters'))
        ['views', 'clusters']
    """
    from tsneviz import rundir

    unknown = sorted(set(steps) - set(ANALYSES))
    if unknown:
        raise UserError(f'unknown analysis {", ".join(unknown)}; choose '
                        f'from {", ".join(ANALYSES)}')
    wanted = [step for step in ANALYSES if step in steps]
    if not wanted:
        return []
    # Marked pending first: a run killed during its analysis says so.
    rundir.record_analysis(run_dir, {s: dict(status='pending')
                                     for s in wanted})
    done, failed = [], []
    for step in wanted:
        started = time.perf_counter()
        try:
            skipped = _analysis_step(step, run_dir, seed, show_progress)
        except Exception as err:  # one step's failure must not hide others
            reason = ' '.join(str(err).split()) or type(err).__name__
            if not isinstance(err, UserError):
                reason = f'{type(err).__name__}: {reason}'
            outcome = dict(status='failed', error=reason,
                           seconds=round(time.perf_counter() - started, 3))
            if not isinstance(err, UserError):
                # a bug: keep where it happened, in run.json, not on the
                # terminal (the CLI prints one line)
                import traceback
                outcome['traceback'] = traceback.format_exc()
            failed.append((step, reason))
            if logger is not None:
                logger.error(f'{step} failed: {reason}')
        else:
            seconds = round(time.perf_counter() - started, 3)
            if skipped:
                outcome = dict(status='skipped', reason=skipped)
                if logger is not None:
                    logger.warning(f'{step} skipped: {skipped}')
            else:
                outcome = dict(status='ok', seconds=seconds)
                done.append(step)
                if logger is not None:
                    logger.info(f'{step}: {seconds:.1f} s')
        rundir.record_analysis(run_dir, {step: outcome})
    if failed:
        names = [f"'{step}'" for step, _ in failed]
        names = ' and '.join([', '.join(names[:-1]), names[-1]]
                             if len(names) > 1 else names)
        reasons = '; '.join(f'{step}: {reason}' for step, reason in failed) \
            if len(failed) > 1 else failed[0][1]
        commands = '; '.join(rundir.step_command(step, run_dir)
                             for step, _ in failed)
        raise rundir.AnalysisFailed(
            f'analysis step{"s" if len(failed) > 1 else ""} {names} failed: '
            f'{reasons}; the layout and features in {run_dir} are '
            f'complete (run.json records each step); re-run '
            f'{"them" if len(failed) > 1 else "it"} with {commands}')
    return done


def _analysis_step(step: str, run_dir: str, seed: int,
                   show_progress: bool) -> Optional[str]:
    """Run one analysis step; the reason when it was skipped, else None."""
    if step == 'views':
        from tsneviz.visualization import render_views
        render_views(run_dir)
    elif step == 'neighbors':
        from tsneviz.analysis import compute_neighbors
        compute_neighbors(run_dir, k=min(20, _run_size(run_dir) - 1),
                          show_progress=show_progress)
    elif step == 'clusters':
        from tsneviz.analysis import cluster_run
        cluster_run(run_dir, seed=seed)
    elif step == 'report':
        from tsneviz.report import write_report
        write_report(run_dir)
    elif step == 'explorer':
        try:
            from tsneviz.explorer import write_explorer
        except ImportError:  # bokeh is an optional extra
            return 'bokeh is not installed: pip install bokeh'
        write_explorer(run_dir)
    return None


def _run_size(run_dir: str) -> int:
    from tsneviz.rundir import read_manifest
    return int(read_manifest(run_dir)['n_samples'])


class _Timer:
    """Phase timings of a run, as recorded in run.json."""

    def __init__(self):
        self.started = time.perf_counter()
        self.timings: Dict[str, float] = {}

    def lap(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[name] = round(now - since, 3)
        return now


@contextlib.contextmanager
def _standalone_run(work_dir: str):
    """A new run directory with its log; removed if the run fails."""
    from mmengine.logging import MMLogger

    from tsneviz.rundir import new_run_dir, quiet_log_file
    timestamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    run_dir = new_run_dir(work_dir, timestamp)
    try:
        yield run_dir, quiet_log_file(MMLogger.get_instance(
            f'tsneviz_{osp.abspath(run_dir)}', logger_name='tsneviz',
            log_file=osp.join(run_dir, 'tsne.log')))
    except BaseException as err:
        if not osp.isfile(osp.join(run_dir, 'run.json')):
            shutil.rmtree(run_dir, ignore_errors=True)
        _raise_write_error(err, work_dir)
        raise


def _raise_write_error(err: BaseException, work_dir: str) -> None:
    """A full disk or read-only folder while writing the run (the log, a
    plot, config.py) is the user's to fix: one line, not a traceback."""
    from tsneviz.rundir import write_error
    user_error = write_error(err, inside=work_dir)
    if user_error is not None and user_error is not err:
        raise user_error from None


def _layout_reducer(cfg, method: str, layout: Optional[dict],
                    seed: Optional[int]):
    """The reducer from the config's block and the CLI, and the seed."""
    settings, ignored = layout_settings(cfg, method, dict(layout or {}))
    for name in ignored:
        print_warning(f'--{name.replace("_", "-")} does not apply to '
                      f'--method {method}; ignored')
    seed = seed if seed is not None else settings.get('seed', 0)
    settings['seed'] = seed
    return build_reducer(method, **settings), seed


def run_features(features, labels=None, images=None, *,
                 work_dir: Optional[str] = None, method: str = 'tsne',
                 tsne: Optional[dict] = None, seed: Optional[int] = None,
                 legend: Optional[bool] = None, show: bool = False,
                 analysis: Optional[Sequence[str]] = None,
                 show_progress: bool = True,
                 argv: Optional[List[str]] = None) -> str:
    """Everything after extraction for a plain feature matrix, no model.

    Args:
        features (str | np.ndarray): (N, C) matrix or its ``.npy`` file.
        labels (str | Sequence, optional): One label per row: ids or class
            names, as a sequence, ``.npy`` or text file. Defaults to None
            (one class).
        images (str | Sequence[str], optional): One image per row: a list
            file, a folder (sorted) or a sequence. Defaults to None.
        work_dir (str, optional): Defaults to ``work_dirs/<file stem>``.
        method (str): ``'tsne'``, ``'umap'`` or ``'pca'``.
        tsne (dict, optional): Layout settings, as in :func:`run_vis_tsne`.
        seed (int, optional): Defaults to 0.
        legend, show, analysis, show_progress, argv: As in
            :func:`run_vis_tsne`.

    Returns:
        str: The run directory.

    Examples:
        >>> run_dir = run_features('embeddings.npy', labels='labels.txt',
        ...                        images='images.txt')
    """
    from mmengine.config import Config

    from tsneviz.data.matrix import (common_root, load_features,
                                     load_images, load_labels)

    timer = _Timer()
    feats = load_features(features)
    n = len(feats)
    label_ids, classes = load_labels(labels, n)
    img_paths = load_images(images, n)
    reducer, seed = _layout_reducer(Config(), method, tsne, seed)
    reducer.check_n_samples(n)
    source = features if isinstance(features, str) else None
    work_dir = work_dir or osp.join(
        './work_dirs', osp.splitext(osp.basename(source))[0] if source
        else 'features')
    with _standalone_run(work_dir) as (run_dir, logger):
        manifest = dict(
            features=source and osp.abspath(source),
            work_dir=osp.abspath(work_dir), checkpoint=None,
            data_root=common_root(img_paths),
            data_prefix=common_root(img_paths),
            extraction=dict(stage='features', taps=[], feature_key=None,
                            cached_from=None))
        return _write_run(
            run_dir, features={'feat_0': feats}, logits=None,
            indices=np.arange(n), img_paths=img_paths, labels=label_ids,
            classes=classes, reducer=reducer, stage='features',
            manifest=manifest, timings=timer.timings, lap=timer.lap,
            t=timer.lap('load', timer.started), logger=logger,
            opts=dict(method=method, seed=seed, legend=legend, show=show,
                      show_progress=show_progress,
                      analysis=_steps(analysis, img_paths), argv=argv,
                      started=timer.started))


def run_module(model, data, stage: str, *, classes=None, image_paths=None,
               work_dir: str = './work_dirs/module', batch_size: int = 64,
               num_workers: int = 0, token_pool: str = 'mean',
               output_is_logits: bool = False, method: str = 'tsne',
               tsne: Optional[dict] = None, seed: Optional[int] = None,
               legend: Optional[bool] = None, show: bool = False,
               analysis: Optional[Sequence[str]] = None,
               show_progress: bool = True) -> str:
    """Any PyTorch model: features at a module, then the whole run.

    Args:
        model (nn.Module): Any model; it is put in eval mode.
        data (Dataset | DataLoader): Images as ``(image, label)`` items or
            batches (torchvision style) or dicts with ``inputs``/``labels``.
        stage (str): Name of the module to tap, e.g. ``'layer4'``.
        classes (Sequence[str], optional): Class names; default the
            dataset's ``classes`` when it has them.
        image_paths (Sequence[str], optional): One image per sample;
            default the dataset's ``samples`` paths (``ImageFolder``).
        work_dir (str): Defaults to ``'./work_dirs/module'``.
        batch_size (int): When ``data`` is a dataset. Defaults to 64.
        num_workers (int): When ``data`` is a dataset. Defaults to 0.
        token_pool (str): ``'mean'`` or ``'cls'``. Defaults to ``'mean'``.
        output_is_logits (bool): The model's output is classification
            logits (gives predictions and loss). Defaults to False.
        method, tsne, seed, legend, show, analysis, show_progress: As in
            :func:`run_vis_tsne`.

    Returns:
        str: The run directory.

    Examples:
        >>> import torchvision
        >>> model = torchvision.models.resnet18(num_classes=10)
        >>> folder = torchvision.datasets.ImageFolder('data/digits/val',
        ...                                           transform=to_tensor)
        >>> run_dir = run_module(model, folder, 'avgpool')
    """
    import torch
    from mmengine.config import Config
    from torch.utils.data import DataLoader

    from tsneviz.extraction import extract
    from tsneviz.progress import progress_bar

    timer = _Timer()
    reducer, seed = _layout_reducer(Config(), method, tsne, seed)
    dataset = data.dataset if isinstance(data, DataLoader) else data
    loader = data if isinstance(data, DataLoader) else DataLoader(
        data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    if isinstance(loader.sampler, torch.utils.data.RandomSampler):
        raise UserError('the dataloader shuffles; features must stay in '
                        'sample order: pass shuffle=False')
    classes = list(classes or getattr(dataset, 'classes', None) or []) or None
    samples = getattr(dataset, 'samples', None)
    if image_paths is None and samples is not None:
        image_paths = [str(item[0]) for item in samples]
    model.eval()
    with _standalone_run(work_dir) as (run_dir, logger):
        total = len(dataset) if hasattr(dataset, '__len__') else 0
        with progress_bar('Extracting features', total,
                          show_progress) as bar:
            result = extract(model, loader, stage, token_pool,
                             progress=lambda k: bar(advance=k),
                             output_is_logits=output_is_logits)
        n = len(result.labels)
        reducer.check_n_samples(n)
        img_paths = [osp.abspath(p) for p in image_paths] \
            if image_paths is not None else [''] * n
        if len(img_paths) != n:
            raise UserError(f'{len(img_paths)} image paths for {n} samples')
        from tsneviz.data.matrix import common_root
        manifest = dict(
            model=type(model).__name__, work_dir=osp.abspath(work_dir),
            checkpoint=None, data_root=common_root(img_paths),
            data_prefix=common_root(img_paths),
            extraction=dict(requested_stage=stage, token_pool=token_pool,
                            taps=result.describe(), feature_key=None,
                            cached_from=None))
        return _write_run(
            run_dir, features=result.features, logits=result.logits,
            indices=np.arange(n), img_paths=img_paths,
            labels=result.labels, classes=classes, reducer=reducer,
            stage=result.stage, manifest=manifest, timings=timer.timings,
            lap=timer.lap, t=timer.lap('extraction', timer.started),
            logger=logger,
            opts=dict(method=method, seed=seed, legend=legend, show=show,
                      show_progress=show_progress,
                      analysis=_steps(analysis, img_paths), argv=None,
                      started=timer.started))


def _steps(analysis: Optional[Sequence[str]], img_paths) -> tuple:
    steps = ANALYSES if analysis is None else tuple(analysis)
    if not any(img_paths):  # no images: nothing to show as thumbnails
        steps = tuple(s for s in steps if s != 'explorer')
    return steps


def _prefer_channels_last(model, device: str) -> None:
    """Put the model's 4-D weights in channels-last (NHWC) layout on CPU.

    oneDNN's CPU convolutions run about a third faster on NHWC for the
    digits ResNet (measured in benchmarks/README.md); the features agree
    with the NCHW ones to float rounding (~1e-6). Only 4-D parameters
    change layout, so models without convolutions are unaffected.
    """
    if not str(device).startswith('cpu'):
        return
    import torch
    model.to(memory_format=torch.channels_last)


def _init_distributed(launcher: str, device: str) -> None:
    import torch.distributed as torch_dist
    from mmengine import dist
    if dist.is_distributed():
        return
    if device.startswith('cuda'):
        dist.init_dist(launcher, backend='nccl')
    elif launcher == 'pytorch':
        # mmengine's launcher always binds a CUDA device; on CPU the gloo
        # group is started from torchrun's environment directly, and
        # mmengine's dist helpers work on it as on any default group.
        torch_dist.init_process_group(backend='gloo')
    else:
        raise UserError(f'--launcher {launcher} needs CUDA devices; on CPU '
                        'use torchrun (tools/dist_vis_tsne.sh)')


def _image_prefix(dataset) -> Optional[str]:
    prefix = getattr(dataset, 'data_prefix', None) or {}
    return prefix.get('img_path') if isinstance(prefix, dict) else None
