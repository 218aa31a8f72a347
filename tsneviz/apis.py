"""Public functions of tsneviz: each step of a run, and the whole run.

A run, as data flows::

    config -> model (safe checkpoint load) -> dataset -> per-class sample
    -> sharded dataloader -> features at a stage (+ logits) -> feat_*.npy
    -> t-SNE -> metrics -> plots + samples.csv -> run.json (last)

``tools/vis_tsne.py`` is a thin shell over :func:`run_vis_tsne`; the steps
are public so the same run can be done from a notebook.
"""
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
from tsneviz.config import (dataloader_config, load_config, resolve_work_dir,
                            tsne_settings)
from tsneviz.data import (UnreadableSampleError, build_dataset, build_loader,
                          dataset_classes, dataset_labels, image_paths,
                          resolve_class_idx, sample_per_class)
from tsneviz.errors import UserError
from tsneviz.reduction import BaseTSNE, build_tsne

__all__ = [
    'Sample', 'build_model', 'sample_dataset', 'extract_features',
    'fit_tsne', 'run_vis_tsne'
]

LAUNCHERS = ('none', 'pytorch', 'slurm')


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

    def class_name(self, label: int) -> str:
        if self.classes is not None and 0 <= label < len(self.classes):
            return self.classes[label]
        return str(label)


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
                dataset_meta={}, missing_keys=[], unexpected_keys=[])
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


def fit_tsne(features: np.ndarray, reducer: BaseTSNE, description: str = '',
             show_progress: bool = True) -> np.ndarray:
    """Run a t-SNE reducer with a progress bar.

    Args:
        features (np.ndarray): (N, C) features.
        reducer (BaseTSNE): From :func:`tsneviz.reduction.build_tsne`.
        description (str): Bar label. Defaults to ''.
        show_progress (bool): Draw a bar. Defaults to True.

    Returns:
        np.ndarray: (N, n_components) coordinates.

    Examples:
        >>> coords = fit_tsne(feats, build_tsne('opentsne', perplexity=30.))
    """
    from tsneviz.progress import progress_bar

    total = reducer.params['n_iter']
    with progress_bar(description or 't-SNE', total, show_progress) as bar:

        def report(done, _total, kl):
            bar(completed=done,
                note='' if kl is None else f'KL {kl:.3f}')

        return reducer.fit_transform(features, progress=report)


def _hash_json(obj) -> str:
    return hashlib.sha256(
        json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


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
                 argv: Optional[List[str]] = None) -> Optional[str]:
    """Run extraction, t-SNE, metrics and plots; return the run directory.

    Arguments mirror ``tools/vis_tsne.py``; ``tsne`` holds the t-SNE flags
    (``None`` values mean "not given", so the config's ``tsne`` block and
    then the backend defaults apply).

    Returns:
        str | None: The run directory on rank 0, None on other ranks.

    Examples:
        >>> run_dir = run_vis_tsne('configs/digits/resnet18-slim_digits.py',
        ...                        'configs/digits/resnet18-slim_digits.pth',
        ...                        tsne=dict(perplexity=20.0))
        >>> sorted(os.listdir(run_dir))[:3]
        ['config.py', 'feat_3.npy', 'feat_3.png']
    """
    started = time.perf_counter()
    timings: Dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 3)
        return now

    if launcher not in LAUNCHERS:
        raise UserError(f'unknown --launcher {launcher!r}; choose one of '
                        f'{", ".join(LAUNCHERS)}')
    cfg = load_config(config, cfg_options)
    resolve_work_dir(cfg, config, work_dir)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise UserError(f'checkpoint not found: {checkpoint}; pass an '
                        'existing file to --checkpoint')
    settings = tsne_settings(cfg, dict(tsne or {}))
    backend = settings.pop('backend', 'opentsne')
    seed = seed if seed is not None else settings.get('seed', 0)
    settings['seed'] = seed
    reducer = build_tsne(backend, **settings)
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
        if is_main:
            from tsneviz.rundir import new_run_dir
            run_dir = new_run_dir(cfg.work_dir, timestamp[0])
        shared = [run_dir]
        dist.broadcast_object_list(shared)
        run_dir = shared[0]
        logger = MMLogger.get_instance(
            f'tsneviz_{timestamp[0]}', logger_name='tsneviz',
            log_file=osp.join(run_dir, 'tsne.log') if run_dir else None,
            log_level=cfg.get('log_level', 'INFO'))
        result = _run(cfg, config, checkpoint, sample, loader_cfg, reducer,
                      backend, run_dir, logger, timings, lap, t,
                      dict(vis_stage=vis_stage, token_pool=token_pool,
                           test_cfg=test_cfg,
                           device=device, batch_size=batch_size,
                           num_workers=num_workers, legend=legend, show=show,
                           trust_checkpoint=trust_checkpoint,
                           use_cache=use_cache, seed=seed,
                           sampling=sampling, launcher=launcher,
                           show_progress=show_progress and is_main,
                           argv=argv, started=started,
                           max_num_samples=max_num_samples))
        return result
    except BaseException:
        # A run directory without run.json is incomplete by contract; do
        # not leave one behind that a user could mistake for a result.
        if is_main and run_dir is not None and \
                not osp.isfile(osp.join(run_dir, 'run.json')):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _run(cfg, config, checkpoint, sample, loader_cfg, reducer, backend,
         run_dir, logger, timings, lap, t, opts) -> Optional[str]:
    from mmengine import dist

    from tsneviz import rundir
    from tsneviz.extraction import gather_rows, prediction_columns
    from tsneviz.metrics import separation_metrics
    from tsneviz.visualization import plot_embedding

    is_main = dist.get_rank() == 0
    if is_main:
        cfg.dump(osp.join(run_dir, 'config.py'))
    n = len(sample.indices)
    logger.info(f'Apply t-SNE to visualize {n} samples of '
                f'{len(sample.class_idx)} classes.')

    from tsneviz.checkpoint import file_sha256
    ckpt_sha = file_sha256(checkpoint) if checkpoint else None
    feature_key = _hash_json(dict(
        model=cfg.model.to_dict() if hasattr(cfg.model, 'to_dict')
        else cfg.model,
        dataset=loader_cfg.get('dataset'), checkpoint=ckpt_sha,
        # without a checkpoint the weights are the seeded random init
        init_seed=None if ckpt_sha else opts['seed'],
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
        taps, stage = cached['taps'], cached['stage']
        t = lap('features_from_cache', t)
    else:
        model, info = build_model(cfg, checkpoint, opts['device'],
                                  opts['trust_checkpoint'], logger,
                                  seed=opts['seed'])
        ckpt_info.update(missing_keys=info['missing_keys'],
                         unexpected_keys=info['unexpected_keys'])
        if sample.classes is None and info['dataset_meta'].get('classes'):
            sample.classes = [str(c) for c in
                              info['dataset_meta']['classes']]
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

    columns = dict(
        index=sample.indices, img_path=image_paths(sample.dataset,
                                                   sample.indices),
        gt_label=sample.labels,
        gt_class=[sample.class_name(int(y)) for y in sample.labels])
    if logits is not None:
        preds = prediction_columns(logits, sample.labels)
        columns['pred_label'] = preds['pred_label']
        columns['pred_class'] = [sample.class_name(int(y))
                                 for y in preds['pred_label']]
        for name in ('score', 'entropy', 'loss'):
            columns[name] = preds[name]

    class_names = sample.classes or [
        str(i) for i in range(int(sample.labels.max()) + 1)]
    results = {}
    for key, feats in features.items():
        coords = fit_tsne(feats, reducer, f't-SNE {key}',
                          opts['show_progress'])
        t = lap(f'tsne:{key}', t)
        for axis, name in zip(coords.T, 'xyz'):
            columns[f'{key}_{name}'] = axis
        outputs.append(osp.basename(rundir.write_array(
            osp.join(run_dir, f'tsne_{key}.npy'), coords)))
        metrics = {}
        if n >= 3:
            metrics = separation_metrics(feats, coords, sample.labels,
                                         k=10, seed=opts['seed'])
        results[key] = dict(kl_divergence=reducer.kl_divergence_,
                            n_iter=reducer.n_iter_, **metrics)
        t = lap(f'metrics:{key}', t)
        p = reducer.params
        title = (f'{key} · {stage} · {backend} t-SNE · perplexity '
                 f'{p["perplexity"]:g}')
        outputs.append(osp.basename(plot_embedding(
            coords, sample.labels, class_names,
            osp.join(run_dir, f'{key}.png'), title=title,
            legend=opts['legend'], show=opts['show'])))
        t = lap(f'plot:{key}', t)
        logger.info(f'{key}: KL {reducer.kl_divergence_:.4f} after '
                    f'{reducer.n_iter_} iterations; ' + ', '.join(
                        f'{k} {v:.4f}' for k, v in metrics.items()
                        if isinstance(v, float)))

    outputs.append(osp.basename(rundir.write_table(
        osp.join(run_dir, rundir.TABLE), columns)))
    outputs += ['config.py', 'tsne.log']
    timings['total'] = round(time.perf_counter() - opts['started'], 3)
    manifest = dict(
        tsneviz_version=__version__,
        created=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        command=opts['argv'] if opts['argv'] is not None else sys.argv,
        config=osp.abspath(config),
        test_cfg=opts['test_cfg'] and osp.abspath(opts['test_cfg']),
        work_dir=osp.abspath(cfg.work_dir),
        checkpoint=ckpt_info,
        seed=opts['seed'],
        n_samples=n,
        sampling=dict(mode=opts['sampling'], class_idx=sample.class_idx,
                      max_num_samples=opts['max_num_samples']),
        classes=sample.classes,
        data_root=loader_cfg['dataset'].get('data_root', None),
        # where img_path values start: annotation files are relative to it
        data_prefix=_image_prefix(sample.dataset),
        extraction=dict(stage=stage, requested_stage=opts['vis_stage'],
                        token_pool=opts['token_pool'],
                        device=opts['device'],
                        world_size=_world_size(),
                        keys=list(features), taps=taps,
                        has_logits=logits is not None,
                        feature_key=feature_key,
                        cached_from=cached_from and osp.abspath(cached_from)),
        tsne=dict(backend=backend, params=reducer.params,
                  ignored=reducer.ignored_),
        results=results,
        timings=timings,
        versions=_versions(),
        outputs=outputs)
    rundir.write_json(osp.join(run_dir, rundir.MANIFEST), manifest)
    logger.info(f'Save features and results to {run_dir}')
    return run_dir


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


def _world_size() -> int:
    from mmengine import dist
    return dist.get_world_size()

