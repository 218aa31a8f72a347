"""``run_vis_tsne``: an mmpretrain config and checkpoint, start to finish.

config -> model (safe checkpoint load) -> dataset -> per-class sample ->
sharded dataloader -> features at a stage (+ logits), or the feature cache
-> :class:`~tsneviz.pipeline.result.RunResult` -> layout -> run directory
(``run.json`` last) -> analysis steps.
"""
import os.path as osp
from typing import List, Optional, Sequence

from tsneviz.errors import UserError

from .options import ExtractOptions, RunOptions, SampleOptions


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
                 method: str = 'tsne',
                 analysis: Optional[Sequence[str]] = None,
                 argv: Optional[List[str]] = None) -> Optional[str]:
    """Run extraction, layout, metrics and plots; return the run directory.

    Arguments mirror ``tools/vis_tsne.py``; ``tsne`` holds the layout flags
    (``None`` values mean "not given", so the config's ``tsne`` (or
    ``umap``, ``pca``) block and then the defaults apply). ``method`` picks
    the layout; ``analysis`` the steps of
    :func:`~tsneviz.analysis.steps.analyze_run` that follow (default all,
    ``()`` none).

    Returns:
        str | None: The run directory on rank 0, None on other ranks.

    Examples:
        >>> run_dir = run_vis_tsne('configs/digits/resnet18-slim_digits.py',
        ...                        'configs/digits/resnet18-slim_digits.pth',
        ...                        tsne=dict(perplexity=20.0))
        >>> sorted(os.listdir(run_dir))[:3]
        ['config.py', 'feat_3.npy', 'feat_3.png']
    """
    from mmengine import dist

    from tsneviz.config import dataloader_config, load_config, resolve_work_dir
    from tsneviz.data import sample_dataset
    from tsneviz.model import resolve_device

    from .distributed import check_launcher, distributed
    from .lifecycle import Timer, layout_reducer, open_run

    timer = Timer()
    check_launcher(launcher)
    cfg = load_config(config, cfg_options)
    resolve_work_dir(cfg, config, work_dir)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise UserError(f'checkpoint not found: {checkpoint}; pass an '
                        'existing file to --checkpoint')
    reducer, seed = layout_reducer(cfg, method, tsne, seed)
    loader_cfg = dataloader_config(cfg, test_cfg, cfg_options)
    device = resolve_device(device)
    with distributed(launcher, device):
        is_main = dist.get_rank() == 0
        timer.lap('config')

        picked = SampleOptions(class_idx, max_num_class, max_num_samples,
                               sampling)
        sample = sample_dataset(loader_cfg, class_idx, max_num_class,
                                max_num_samples, sampling, seed)
        reducer.check_n_samples(len(sample.indices))
        timer.lap('dataset')

        options = RunOptions(method=method, seed=seed, legend=legend,
                             show=show,
                             show_progress=show_progress and is_main,
                             analysis=analysis, argv=argv)
        extract = ExtractOptions(vis_stage, token_pool, device, batch_size,
                                 num_workers, trust_checkpoint, use_cache)
        with open_run(cfg.work_dir, method,
                      cfg.get('log_level', 'INFO')) as (run_dir, logger):
            return _run(cfg, config, test_cfg, checkpoint, sample, picked,
                        loader_cfg, reducer, run_dir, logger, timer, options,
                        extract)


def _run(cfg, config, test_cfg, checkpoint, sample, picked: SampleOptions,
         loader_cfg, reducer, run_dir, logger, timer, options: RunOptions,
         extract: ExtractOptions) -> Optional[str]:
    """Inside the run directory: features (model or cache), then the run."""
    import numpy as np
    from mmengine import dist

    from tsneviz import rundir
    from tsneviz.checkpoint import file_sha256
    from tsneviz.data import image_paths, image_prefix
    from tsneviz.data.paths import absolute

    from .cache import hash_json
    from .result import RunResult, finish_run

    is_main = dist.get_rank() == 0
    if is_main:
        cfg.dump(osp.join(run_dir, rundir.CONFIG))
    n = len(sample.indices)
    # classes asked for but without samples are not in the plot
    n_classes = len(np.unique(sample.labels))
    empty = len(sample.class_idx) - n_classes
    logger.info(f'Apply t-SNE to visualize {n} samples of {n_classes} '
                'classes' + (f' ({empty} of the {len(sample.class_idx)} '
                             'classes asked for have no samples).'
                             if empty > 0 else '.'))

    ckpt_sha = file_sha256(checkpoint) if checkpoint else None
    feature_key = hash_json(dict(
        model=cfg.model.to_dict() if hasattr(cfg.model, 'to_dict')
        else cfg.model,
        dataset=loader_cfg.get('dataset'), checkpoint=ckpt_sha,
        # without a checkpoint the weights are the seeded random init
        init_seed=None if ckpt_sha else options.seed,
        # a relative data_root names other images from another folder
        images=absolute(image_prefix(sample.dataset)),
        stage=extract.vis_stage, token_pool=extract.token_pool,
        indices=sample.indices.tolist()))
    ckpt_info = dict(path=checkpoint and osp.abspath(checkpoint),
                     sha256=ckpt_sha, trusted=extract.trust_checkpoint)
    got = _features(cfg, checkpoint, sample, loader_cfg, extract,
                    feature_key, ckpt_info, options.seed,
                    options.show_progress, logger, timer)
    if not is_main:
        return None
    cached_from = got['cached_from']
    sections = dict(
        config=osp.abspath(config),
        test_cfg=test_cfg and osp.abspath(test_cfg),
        work_dir=osp.abspath(cfg.work_dir),
        checkpoint=ckpt_info,
        sampling=dict(mode=picked.sampling, class_idx=sample.class_idx,
                      max_num_samples=picked.max_num_samples),
        # absolute: a relative data_root means "from the folder the run
        # was started in", which later tools need not run from
        data_root=absolute(loader_cfg['dataset'].get('data_root', None)),
        # where img_path values start: annotation files are relative to it
        data_prefix=absolute(image_prefix(sample.dataset)),
        extraction=dict(stage=got['stage'],
                        requested_stage=extract.vis_stage,
                        token_pool=extract.token_pool,
                        device=extract.device,
                        world_size=dist.get_world_size(),
                        taps=got['taps'], feature_key=feature_key,
                        cached_from=cached_from and osp.abspath(cached_from)))
    result = RunResult.build(
        features=got['features'], logits=got['logits'],
        indices=sample.indices,
        img_paths=image_paths(sample.dataset, sample.indices),
        labels=sample.labels, classes=sample.classes, stage=got['stage'],
        sections=sections, model_classes=got['model_classes'],
        logger=logger)
    del got  # the result holds the features, and frees them when written
    return finish_run(run_dir, result, reducer, options, timer, logger)


def _features(cfg, checkpoint, sample, loader_cfg, extract: ExtractOptions,
              feature_key: str, ckpt_info: dict, seed: int,
              show_progress: bool, logger, timer) -> dict:
    """The features of the sample: from an earlier run, or the model.

    On ranks other than 0 the features stay with rank 0 (gathered there).
    """
    from tsneviz import rundir
    from tsneviz.data import build_loader
    from tsneviz.extraction import extract_features, gather_rows
    from tsneviz.model import build_model, model_classes, prefer_channels_last

    from .cache import load_cached

    cached_from = rundir.find_cached_run(cfg.work_dir, feature_key) \
        if extract.use_cache else None
    if cached_from is not None:
        logger.info(f'Reusing the features of {cached_from} (same config, '
                    'checkpoint, stage and samples); skipping the model.')
        cached = load_cached(cached_from)
        timer.lap('features_from_cache')
        return dict(cached, cached_from=cached_from)
    model, info = build_model(cfg, checkpoint, extract.device,
                              extract.trust_checkpoint, logger, seed=seed)
    ckpt_info.update(missing_keys=info['missing_keys'],
                     unexpected_keys=info['unexpected_keys'],
                     mismatched_keys=info['mismatched_keys'])
    classes = model_classes(cfg, model, info)
    prefer_channels_last(model, extract.device)
    timer.lap('model')
    loader, positions = build_loader(loader_cfg, sample.dataset,
                                     sample.indices, extract.batch_size,
                                     extract.num_workers)
    extraction = extract_features(model, loader, extract.vis_stage,
                                  extract.token_pool, show_progress,
                                  total=len(sample.indices))
    local = dict(extraction.features)
    if extraction.logits is not None:
        local['__logits__'] = extraction.logits
    gathered = gather_rows(local, positions, len(sample.indices)) or {}
    timer.lap('extraction')
    return dict(features=gathered, logits=gathered.pop('__logits__', None),
                model_classes=classes, taps=extraction.describe(),
                stage=extraction.stage, cached_from=None)
