"""Model step: build the config's classifier and load its checkpoint safely.

Also the device it runs on and the memory layout that makes it fast on CPU,
and the names of its classes (the model's label space).
"""
from typing import List, Optional

from tsneviz.errors import UserError

__all__ = ['build_model', 'model_classes', 'prefer_channels_last',
           'resolve_device']


def resolve_device(device: Optional[str]) -> str:
    """The torch device to run on: the one asked for, else mmengine's pick.

    Args:
        device (str, optional): e.g. ``'cpu'``, ``'cuda:0'``. Defaults to
            None (CUDA when available).

    Returns:
        str: The device, checked to exist here.

    Examples:
        >>> resolve_device('cpu')
        'cpu'
    """
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
    import torch
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    from tsneviz.checkpoint import (
        checkpoint_dataset_meta,
        file_sha256,
        load_checkpoint,
        load_weights,
    )

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


def model_classes(cfg, model, info: dict) -> Optional[List[str]]:
    """Names of the model's classes: checkpoint, config, model, or None.

    Never the test dataset's: that is the other label space.

    Args:
        cfg (Config): The resolved config.
        model (nn.Module): The built model.
        info (dict): :func:`build_model`'s ``info``.

    Returns:
        list[str] | None: The names, or None when nothing names them.

    Examples:
        >>> model_classes(cfg, model, info)[:3]
        ['0', '1', '2']
    """
    for meta in (info['dataset_meta'], cfg.get('dataset_meta', None),
                 getattr(model, '_dataset_meta', None),
                 getattr(model, 'dataset_meta', None)):
        if isinstance(meta, dict) and meta.get('classes'):
            return [str(c) for c in meta['classes']]
    return None


def prefer_channels_last(model, device: str) -> None:
    """Put the model's 4-D weights in channels-last (NHWC) layout on CPU.

    oneDNN's CPU convolutions run about a third faster on NHWC for the
    digits ResNet (measured in benchmarks/README.md); the features agree
    with the NCHW ones to float rounding (~1e-6). Only 4-D parameters
    change layout, so models without convolutions are unaffected.

    Args:
        model (nn.Module): The model, on ``device``.
        device (str): Its device; anything but CPU is left alone.
    """
    if not str(device).startswith('cpu'):
        return
    import torch
    model.to(memory_format=torch.channels_last)
