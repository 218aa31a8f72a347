"""Extraction step: features at a stage or named module, pooled to (N, C).

A stage is read with forward hooks during one ``mode='tensor'`` forward of
the model, so the classification logits of the same pass come for free
(prediction, score, entropy and per-sample loss). Hooks are keyed by module
name, read once per batch and removed when extraction ends, as in timm's
feature hooks.
"""
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tsneviz.errors import UserError

STAGES = ('backbone', 'neck', 'pre_logits')
TOKEN_POOLS = ('mean', 'cls')


@dataclass
class Tap:
    """What was tapped for one feature key, and how it was pooled."""

    key: str
    module: str
    raw_shape: List[int]
    pooling: str


@dataclass
class Extraction:
    """Per-sample outputs of one extraction, rows in loader order.

    Attributes:
        features (dict[str, np.ndarray]): ``feat_<key>`` -> (N, C) float32.
        labels (np.ndarray): Ground-truth labels (N,), -1 where unknown.
        logits (np.ndarray, optional): (N, num_classes) when the model has
            a single-label classification head, else None.
        taps (list[Tap]): One entry per feature key.
        stage (str): The stage read, ``None`` resolved to the default.
    """

    features: Dict[str, np.ndarray]
    labels: np.ndarray
    logits: Optional[np.ndarray] = None
    taps: List[Tap] = field(default_factory=list)
    stage: str = ''

    def describe(self) -> List[dict]:
        return [asdict(t) for t in self.taps]


@dataclass
class _Plan:
    stage: str
    module: str
    post: List[Callable] = field(default_factory=list)
    naming: str = 'out_indices'


def _module_names(model: nn.Module, depth: int = 2) -> List[str]:
    names = [n for n, _ in model.named_modules()
             if n and n.count('.') < depth]
    return names


def _has_module(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
        return True
    except AttributeError:
        return False


def plan_stage(model: nn.Module, stage: Optional[str]) -> _Plan:
    """Decide which module to tap for a stage, and what to apply after it.

    ``backbone``, ``neck`` and ``pre_logits`` mean what mmpretrain's
    ``extract_feat(stage=...)`` means: ``neck`` falls back to the backbone
    output for a model without a neck, ``pre_logits`` is the head's
    ``pre_logits`` of the neck output. ``None`` is the model's own
    ``extract_feat()`` default. Anything else names a module.

    Args:
        model (nn.Module): The model.
        stage (str, optional): Stage or module name.

    Returns:
        _Plan: Module to tap, functions to apply to its output, key naming.
    """
    has_backbone = _has_module(model, 'backbone')
    neck = getattr(model, 'neck', None)
    # An ImageClassifier runs its neck in the tensor forward; a
    # self-supervisor's tensor forward stops after the backbone, so there
    # the neck is applied to the tapped backbone output instead.
    runs_neck = neck is not None and _is_image_classifier(model)
    if stage is None:
        if not has_backbone:
            raise UserError('the model has no backbone; pass --vis-stage '
                            'with the name of a module to tap')
        stage = 'neck' if _is_image_classifier(model) else 'backbone'
    if stage in STAGES and not has_backbone:
        raise UserError(f'--vis-stage {stage} needs an OpenMMLab model with '
                        'a backbone; name a module instead, one of: '
                        + ', '.join(_module_names(model)[:20]))
    if stage == 'backbone':
        return _Plan(stage, 'backbone')
    if stage in ('neck', 'pre_logits'):
        if neck is None:
            plan = _Plan(stage, 'backbone')
        elif runs_neck:
            plan = _Plan(stage, 'neck')
        else:
            plan = _Plan(stage, 'backbone', [neck])
        if stage == 'pre_logits':
            head = getattr(model, 'head', None)
            if head is None or not hasattr(head, 'pre_logits'):
                raise UserError('--vis-stage pre_logits needs a head with a '
                                '`pre_logits` method, and this model has '
                                'none; use backbone or neck')
            plan.post.append(head.pre_logits)
            plan.naming = 'pre_logits'
        return plan
    if _has_module(model, stage):
        return _Plan(stage, stage, naming='module')
    raise UserError(
        f'unknown stage {stage!r}: choose one of {", ".join(STAGES)} or a '
        'module name such as ' + ', '.join(_module_names(model)[:12]))


def _is_image_classifier(model: nn.Module) -> bool:
    return hasattr(model, 'extract_feat') and hasattr(model, 'with_head') \
        and 'stage' in model.extract_feat.__code__.co_varnames


def _flatten(output) -> List[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _flatten(item)]
    if isinstance(output, dict):
        return [t for item in output.values() for t in _flatten(item)]
    raise UserError(f'the tapped module returned {type(output).__name__}, '
                    'not tensors; tap another module')


def pool(x: torch.Tensor, token_pool: str = 'mean') -> Tuple[torch.Tensor,
                                                              str]:
    """Pool one batch of features to (N, C), keeping the batch axis.

    Args:
        x (torch.Tensor): (N, C), (N, L, C) tokens or (N, C, H, W, ...).
        token_pool (str): ``'mean'`` over tokens or ``'cls'`` (token 0).
            Defaults to ``'mean'``.

    Returns:
        tuple: Pooled (N, C) tensor and a description of the pooling.

    Examples:
        >>> pool(torch.rand(1, 8, 4, 4))[0].shape  # a batch of one stays 2-D
        torch.Size([1, 8])
    """
    if x.ndim == 2:
        return x, 'none'
    if x.ndim == 3:
        if token_pool == 'cls':
            return x[:, 0], 'class token (token 0)'
        return x.mean(dim=1), 'mean over tokens'
    if x.ndim == 4:
        # adaptive_avg_pool2d is what mmpretrain's tool applies; flatten
        # instead of squeeze() so that a batch of one keeps its batch axis.
        return F.adaptive_avg_pool2d(x, 1).flatten(1), 'global average pool'
    if x.ndim > 4:
        return x.flatten(2).mean(dim=2), 'global average pool'
    raise UserError(f'cannot pool a feature of shape {tuple(x.shape)}; tap '
                    'a module whose output has a batch axis')


def _feature_keys(model: nn.Module, plan: _Plan, count: int) -> List[str]:
    if plan.naming == 'pre_logits':
        base = ['feat_pre_logits']
    elif plan.naming == 'module':
        base = [f'feat_{plan.module}']
    else:
        indices = getattr(getattr(model, 'backbone', None), 'out_indices',
                          None)
        if isinstance(indices, int):
            indices = [indices]
        if indices is not None and len(indices) >= count:
            # Same names as mmpretrain's tool: feat_<backbone out index>.
            return [f'feat_{i}' for i in list(indices)[-count:]]
        return [f'feat_{i}' for i in range(count)]
    if count == 1:
        return base
    return [f'{base[0]}_{i}' for i in range(count)]


def _single_label_head(model: nn.Module) -> bool:
    head = getattr(model, 'head', None)
    if head is None:
        return False
    try:
        from mmpretrain.models.heads import ClsHead, MultiLabelClsHead
    except ImportError:  # a plain PyTorch model
        return False
    return isinstance(head, ClsHead) and not isinstance(head,
                                                         MultiLabelClsHead)


def _batch_inputs(inputs):
    """One (B, C, H, W) tensor from what a data preprocessor returns.

    Self-supervised preprocessors return a list: of views, each a batch
    (the first view is the un-augmented one a test pipeline gives), or, with
    ``pseudo_collate``, of single images, which are stacked.
    """
    if isinstance(inputs, (list, tuple)):
        if inputs and inputs[0].ndim == 3:
            return torch.stack(list(inputs))
        return inputs[0]
    return inputs


def _plain_batch(data, device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inputs and labels of a torchvision-style batch."""
    labels = None
    if isinstance(data, dict):
        inputs = data.get('inputs', data.get('img', data.get('image')))
        labels = data.get('labels', data.get('label'))
    elif isinstance(data, (list, tuple)):
        inputs = data[0]
        labels = data[1] if len(data) > 1 else None
    else:
        inputs = data
    if not isinstance(inputs, torch.Tensor):
        raise UserError('batches must be tensors, (inputs, labels) pairs or '
                        "dicts with 'inputs'; got "
                        f'{type(inputs).__name__}')
    if labels is None:
        labels = torch.full((len(inputs),), -1, dtype=torch.long)
    return inputs.to(device), torch.as_tensor(labels).long().reshape(-1)


def _batch_labels(data_samples, batch_size: int) -> torch.Tensor:
    labels = []
    for sample in data_samples or [None] * batch_size:
        gt = getattr(sample, 'gt_label', None)
        labels.append(int(gt.reshape(-1)[0]) if gt is not None and
                      gt.numel() else -1)
    return torch.tensor(labels, dtype=torch.long)


def extract(model: nn.Module, dataloader, stage: Optional[str] = None,
            token_pool: str = 'mean',
            progress: Optional[Callable[[int], None]] = None,
            output_is_logits: bool = False) -> Extraction:
    """Run the model over a dataloader and collect pooled features.

    Works for mmpretrain models (batches go through their
    ``data_preprocessor`` and a ``mode='tensor'`` forward) and for any
    PyTorch module (``model(inputs)``, batches ``(inputs, labels)``,
    ``{'inputs': ..., 'labels': ...}`` or bare input tensors).

    Args:
        model (nn.Module): The model, already on its device, in eval mode.
        dataloader (Iterable): Batches as mmengine dataloaders yield them.
        stage (str, optional): ``backbone``, ``neck``, ``pre_logits`` or a
            module name such as ``backbone.layer3``. Defaults to None, the
            model's ``extract_feat`` default.
        token_pool (str): Pooling of (N, L, C) tokens, ``'mean'`` or
            ``'cls'``. Defaults to ``'mean'``.
        progress (Callable[[int], None], optional): Called with the batch
            size after each batch.
        output_is_logits (bool): For a plain PyTorch module: its output is
            classification logits, so predictions and loss are computed.
            Never guessed, since a feature extractor's output is not.
            Defaults to False.

    Returns:
        Extraction: Features, labels, logits and what was tapped.

    Examples:
        >>> result = extract(model, loader, stage='backbone.layer3')
        >>> result.features['feat_backbone.layer3'].shape
        (200, 256)
    """
    if token_pool not in TOKEN_POOLS:
        raise UserError(f'unknown token pooling {token_pool!r}; choose one '
                        f'of {", ".join(TOKEN_POOLS)}')
    openmmlab = hasattr(model, 'data_preprocessor')
    plan = plan_stage(model, stage)
    with_logits = _single_label_head(model) if openmmlab else output_is_logits
    device = next(iter(model.parameters()), torch.empty(0)).device
    captured: Dict[str, list] = {}

    def hook(module, inputs, output):
        captured.setdefault(plan.module, []).append(output)

    handle = model.get_submodule(plan.module).register_forward_hook(hook)
    feats: Dict[str, list] = {}
    keys: List[str] = []
    taps: List[Tap] = []
    labels, logits = [], []
    try:
        with torch.inference_mode():
            for data in dataloader:
                captured.clear()
                if openmmlab:
                    data = model.data_preprocessor(data, False)
                    inputs = _batch_inputs(data['inputs'])
                    samples = data.get('data_samples')
                    out = model(inputs, mode='tensor')
                else:
                    inputs, batch_labels = _plain_batch(data, device)
                    out = model(inputs)
                if plan.module not in captured:
                    raise UserError(
                        f'module {plan.module!r} did not run in the model\'s '
                        'forward pass; choose another --vis-stage')
                # A module called several times per forward (shared blocks)
                # is read at its last call, the one closest to the output.
                tapped = captured[plan.module][-1]
                for fn in plan.post:
                    tapped = fn(tapped)
                tensors = _flatten(tapped)
                if not keys:
                    keys = _feature_keys(model, plan, len(tensors))
                for key, tensor in zip(keys, tensors):
                    pooled, how = pool(tensor, token_pool)
                    if len(taps) < len(keys):
                        taps.append(Tap(key, plan.module,
                                        list(tensor.shape[1:]), how))
                    feats.setdefault(key, []).append(
                        pooled.float().cpu().numpy())
                batch = len(inputs)
                labels.append(_batch_labels(samples, batch) if openmmlab
                              else batch_labels)
                if with_logits and isinstance(out, torch.Tensor) and \
                        out.ndim == 2:
                    logits.append(out.float().cpu().numpy())
                if progress is not None:
                    progress(batch)
    finally:
        handle.remove()
    if not keys:
        raise UserError('the dataloader gave no batches; check the dataset '
                        'and --class-idx')
    return Extraction(
        features={k: np.concatenate(v).astype(np.float32)
                  for k, v in feats.items()},
        labels=torch.cat(labels).numpy(),
        logits=np.concatenate(logits) if logits else None,
        taps=taps, stage=plan.stage)


def prediction_columns(logits: np.ndarray,
                       labels: Optional[np.ndarray] = None) -> dict:
    """Prediction, score, softmax entropy and cross-entropy per sample.

    Args:
        logits (np.ndarray): (N, K) classification scores before softmax.
        labels (np.ndarray, optional): (N,) ground truth as ids of the
            model's K classes (see :mod:`tsneviz.labels`); -1 gives a NaN
            loss. None: the truth is not in the model's classes, so there
            is no loss.

    Returns:
        dict[str, np.ndarray]: ``pred_label``, ``score``, ``entropy``, and
        ``loss`` when ``labels`` are given.

    Examples:
        >>> cols = prediction_columns(np.array([[2.0, 0.0]]), np.array([0]))
        >>> int(cols['pred_label'][0])
        0
    """
    t = torch.from_numpy(logits).double()
    log_p = torch.log_softmax(t, dim=1)
    p = log_p.exp()
    score, pred = p.max(dim=1)
    columns = dict(pred_label=pred.numpy(), score=score.numpy(),
                   entropy=-(p * log_p).sum(dim=1).numpy())
    if labels is None:
        return columns
    target = torch.from_numpy(np.asarray(labels)).long()
    known = (target >= 0) & (target < t.shape[1])
    loss = torch.full((len(t),), float('nan'), dtype=torch.float64)
    if known.any():
        loss[known] = F.nll_loss(log_p[known], target[known],
                                 reduction='none')
    return dict(columns, loss=loss.numpy())


def gather_rows(arrays: Dict[str, np.ndarray], positions: Sequence[int],
                total: int) -> Optional[Dict[str, np.ndarray]]:
    """Gather per-rank rows into sample order on rank 0.

    Each rank holds the rows of the sample positions its sampler gave it
    (mmengine's ``DefaultSampler`` pads the last shard with repeats, which
    land on the same position and are harmless).

    Args:
        arrays (dict[str, np.ndarray]): Rows of this rank, in its order.
        positions (Sequence[int]): Sample position of each row.
        total (int): Number of samples over all ranks.

    Returns:
        dict | None: Full arrays on rank 0, None elsewhere.
    """
    from mmengine.dist import all_gather_object, get_rank, get_world_size
    if get_world_size() == 1:
        order = np.asarray(positions)
        out = {}
        for key, rows in arrays.items():
            full = np.empty((total,) + rows.shape[1:], rows.dtype)
            full[order] = rows
            out[key] = full
        return out
    parts = all_gather_object((list(positions), arrays))
    if get_rank() != 0:
        return None
    out = {}
    for key in arrays:
        sample = parts[0][1][key]
        full = np.empty((total,) + sample.shape[1:], sample.dtype)
        for pos, part in parts:
            full[np.asarray(pos)] = part[key]
        out[key] = full
    return out


def extract_features(model: nn.Module, dataloader,
                     stage: Optional[str] = None, token_pool: str = 'mean',
                     show_progress: bool = True,
                     total: Optional[int] = None,
                     output_is_logits: bool = False) -> Extraction:
    """:func:`extract` with a progress bar and a one-line unreadable image.

    Args:
        model (nn.Module): Model on its device, in eval mode.
        dataloader (Iterable): mmengine-style or torchvision-style batches.
        stage (str, optional): Stage or module name. Defaults to None.
        token_pool (str): ``'mean'`` or ``'cls'``. Defaults to ``'mean'``.
        show_progress (bool): Draw a bar. Defaults to True.
        total (int, optional): Samples expected, for the bar; default the
            dataloader's dataset's length.
        output_is_logits (bool): As in :func:`extract`. Defaults to False.

    Returns:
        Extraction: Features, labels, logits and the taps.

    Examples:
        >>> result = extract_features(model, loader, 'backbone.layer3',
        ...                           show_progress=False)
        >>> result.features['feat_backbone.layer3'].shape
        (200, 256)
    """
    import re

    from tsneviz.data import UnreadableSampleError
    from tsneviz.progress import progress_bar

    plan_stage(model, stage)  # a bad stage fails before the bar appears
    if total is None:
        dataset = getattr(dataloader, 'dataset', None)
        total = len(dataset) if hasattr(dataset, '__len__') else 0
    with progress_bar('Extracting features', total, show_progress) as bar:
        try:
            return extract(model, dataloader, stage, token_pool,
                           progress=lambda n: bar(advance=n),
                           output_is_logits=output_is_logits)
        except UnreadableSampleError as err:
            # Across worker processes the message carries the worker's
            # traceback; its last line is ours.
            last = str(err).strip().splitlines()[-1]
            last = re.sub(r'^.*UnreadableSampleError: ', '', last)
            raise UserError(
                f'cannot read image {last}; fix or remove that file '
                '(unreadable images are not skipped, so the sample stays '
                'the one asked for)') from None
