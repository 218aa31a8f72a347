"""Runs without an mmpretrain config: a plain matrix, or any PyTorch model.

Both end as :func:`~tsneviz.pipeline.vis_tsne.run_vis_tsne` does: a
:class:`~tsneviz.pipeline.result.RunResult`, its layout, the run
directory, the analysis steps.
"""
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np

from tsneviz.errors import UserError

from .lifecycle import Timer, layout_reducer, open_run
from .options import RunOptions
from .result import RunResult, finish_run


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
        method (str): A key of ``REDUCERS``: ``'tsne'``, ``'umap'``,
            ``'pca'``. Defaults to ``'tsne'``.
        tsne (dict, optional): Layout settings, as in ``run_vis_tsne``.
        seed (int, optional): Defaults to 0.
        legend, show, analysis, show_progress, argv: As in
            ``run_vis_tsne``.

    Returns:
        str: The run directory.

    Examples:
        >>> run_dir = run_features('embeddings.npy', labels='labels.txt',
        ...                        images='images.txt')
    """
    from mmengine.config import Config

    from tsneviz.data.matrix import (
        common_root,
        load_features,
        load_images,
        load_labels,
    )

    timer = Timer()
    feats = load_features(features)
    n = len(feats)
    label_ids, classes = load_labels(labels, n)
    img_paths = load_images(images, n)
    reducer, seed = layout_reducer(Config(), method, tsne, seed)
    reducer.check_n_samples(n)
    source = features if isinstance(features, str) else None
    work_dir = work_dir or osp.join(
        './work_dirs', osp.splitext(osp.basename(source))[0] if source
        else 'features')
    options = RunOptions(method=method, seed=seed, legend=legend, show=show,
                         show_progress=show_progress, analysis=analysis,
                         argv=argv)
    with open_run(work_dir, method) as (run_dir, logger):
        sections = dict(
            features=source and osp.abspath(source),
            work_dir=osp.abspath(work_dir), checkpoint=None,
            data_root=common_root(img_paths),
            data_prefix=common_root(img_paths),
            extraction=dict(stage='features', taps=[], feature_key=None,
                            cached_from=None))
        result = RunResult.build(
            features={'feat_0': feats}, logits=None, indices=np.arange(n),
            img_paths=img_paths, labels=label_ids, classes=classes,
            stage='features', sections=sections, logger=logger)
        del feats  # the result holds them, and frees them when written
        timer.lap('load')
        return finish_run(run_dir, result, reducer, options, timer, logger)


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
            ``run_vis_tsne``.

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

    from tsneviz.data.matrix import common_root
    from tsneviz.extraction import extract_features

    timer = Timer()
    reducer, seed = layout_reducer(Config(), method, tsne, seed)
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
    options = RunOptions(method=method, seed=seed, legend=legend, show=show,
                         show_progress=show_progress, analysis=analysis)
    with open_run(work_dir, method) as (run_dir, logger):
        total = len(dataset) if hasattr(dataset, '__len__') else 0
        extraction = extract_features(model, loader, stage, token_pool,
                                      show_progress, total=total,
                                      output_is_logits=output_is_logits)
        n = len(extraction.labels)
        reducer.check_n_samples(n)
        img_paths = [osp.abspath(p) for p in image_paths] \
            if image_paths is not None else [''] * n
        if len(img_paths) != n:
            raise UserError(f'{len(img_paths)} image paths for {n} samples')
        sections = dict(
            model=type(model).__name__, work_dir=osp.abspath(work_dir),
            checkpoint=None, data_root=common_root(img_paths),
            data_prefix=common_root(img_paths),
            extraction=dict(requested_stage=stage, token_pool=token_pool,
                            taps=extraction.describe(), feature_key=None,
                            cached_from=None))
        result = RunResult.build(
            features=extraction.features, logits=extraction.logits,
            indices=np.arange(n), img_paths=img_paths,
            labels=extraction.labels, classes=classes,
            stage=extraction.stage, sections=sections, logger=logger)
        del extraction  # the result frees the features when written
        timer.lap('extraction')
        return finish_run(run_dir, result, reducer, options, timer, logger)
