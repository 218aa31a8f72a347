"""Dataset and dataloader from the config's ``test_dataloader``.

The dataset is built through mmpretrain's ``DATASETS`` registry and the
loader through mmengine's ``Runner.build_dataloader``, so any dataset,
pipeline and collate function an mmpretrain config names works unchanged.
"""
import copy
import inspect
import os.path as osp
import re
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dist import is_main_process
from torch.utils.data import Dataset

from tsneviz.errors import UserError

from .scan import dataset_skipped, warn_skipped


class UnreadableSampleError(RuntimeError):
    """A sample's pipeline failed; the message starts with its image path.

    Takes a single string so that PyTorch can re-raise it across dataloader
    worker processes.
    """


def _root_of(dataset_cfg) -> Optional[str]:
    root = dataset_cfg.get('data_root', None)
    if root:
        return root
    prefix = dataset_cfg.get('data_prefix', None)
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path', None)
    return prefix if isinstance(prefix, str) and prefix else None


def build_dataset(dataloader_cfg, default_scope: str = 'mmpretrain'):
    """Build the dataset of a ``test_dataloader`` config.

    Args:
        dataloader_cfg (ConfigDict): The dataloader config.
        default_scope (str): Registry scope. Defaults to ``'mmpretrain'``.

    Returns:
        BaseDataset: The dataset, fully initialised.

    Examples:
        >>> ds = build_dataset(cfg.test_dataloader)
        >>> ds.metainfo['classes'][:3]
        ('0', '1', '2')
    """
    from mmengine.registry import DefaultScope

    from mmpretrain.registry import DATASETS

    dataset_cfg = copy.deepcopy(dataloader_cfg['dataset'])
    root = _root_of(dataset_cfg)
    if root is not None and '://' not in root and not osp.exists(root):
        raise UserError(
            f'dataset root not found: {root}; put the data there or point '
            'the config at it, e.g. --cfg-options '
            f'test_dataloader.dataset.data_root=PATH')
    with DefaultScope.overwrite_default_scope(default_scope):
        dataset_cls = _dataset_class(DATASETS, dataset_cfg.get('type'))
    downloads = dataset_cls is not None and \
        'download' in inspect.signature(dataset_cls).parameters
    if downloads:
        # CIFAR, MNIST and friends download into an empty data_root by
        # default; offline that ends in chained tracebacks, and a
        # visualisation tool should never fetch gigabytes unasked.
        dataset_cfg['download'] = False
    name = getattr(dataset_cls, '__name__', dataset_cfg.get('type'))
    try:
        with DefaultScope.overwrite_default_scope(default_scope):
            dataset = DATASETS.build(dataset_cfg)
    except (FileNotFoundError, NotADirectoryError) as err:
        raise UserError(f'could not build the dataset: {err}; check '
                        'data_root, data_prefix and ann_file of '
                        'test_dataloader.dataset') from err
    except AssertionError as err:
        # mmpretrain checks a dataset's layout with asserts, e.g. ImageNet
        # wants exactly its 1000 class folders.
        classes = (getattr(dataset_cls, 'METAINFO', None) or {}).get(
            'classes') or ()
        expects = f' with its {len(classes)} classes' if classes else ''
        raise UserError(
            f'the data in {root} does not fit the {name} dataset: '
            f'{_reason(err)}; {name} expects its own layout{expects}; for '
            'a folder with one subfolder per class use --cfg-options '
            'test_dataloader.dataset.type=CustomDataset') from None
    except RuntimeError as err:
        if 'Found 0 files' in str(err):
            raise UserError(f'the dataset is empty: {err}') from err
        if downloads:
            url = getattr(dataset_cls, 'url', None) or getattr(
                dataset_cls, 'url_prefix', None)
            where = f' (from {url})' if url else ''
            raise UserError(
                f'the {name} data is missing or incomplete in {root}; '
                f'tsneviz does not download datasets: download it{where} '
                'into that folder, or point test_dataloader.dataset.'
                'data_root at the data') from None
        raise
    except TypeError as err:
        # a setting of the config's own dataset type that the type put in
        # its place does not take (ImageNet's `split` for CustomDataset)
        if 'unexpected keyword argument' not in str(err):
            raise
        raise UserError(
            f'test_dataloader.dataset has a setting the {name} dataset does '
            f'not take: {_reason(err)}; give the whole dataset in a config '
            'file and pass it with --test-cfg') from None
    except KeyError as err:
        if 'registry' in str(err):  # an unknown dataset type
            raise UserError(f'could not build the dataset: {_reason(err)}; '
                            'check test_dataloader.dataset.type') from None
        raise
    if is_main_process():  # every rank builds it; one line is enough
        _warn_skipped(dataset)
    return dataset


def _warn_skipped(dataset) -> None:
    """Name the images a folder scan left out, and how to read them.

    mmpretrain's ``CustomDataset`` keeps only its ``extensions`` (its
    ``IMG_EXTENSIONS``: no ``.webp``, no ``.gif``) and drops the rest
    without a word; the dataset's ``extensions`` argument widens it.
    """
    skipped = dataset_skipped(dataset)
    if not skipped:
        return
    reads = sorted(getattr(dataset, 'extensions', ()) or ())
    wider = tuple(reads + sorted({osp.splitext(p)[1].lower()
                                  for p in skipped}))
    warn_skipped(skipped, dataset.img_prefix,
                 f'{type(dataset).__name__} reads only {", ".join(reads)} '
                 'files',
                 'to read them too, set the dataset\'s extensions in the '
                 f'config: test_dataloader.dataset.extensions={wider!r}')


def _dataset_class(registry, type_):
    """The dataset class a config names, or None when it is unknown."""
    if isinstance(type_, type):
        return type_
    if not isinstance(type_, str):
        return None
    try:
        return registry.get(type_)
    except Exception:  # left to DATASETS.build to report
        return None


def _reason(err: BaseException) -> str:
    """mmpretrain's message on one line, without mmengine's prefix."""
    text = ' '.join(str(err).split())
    if len(text) > 1 and text[0] == text[-1] and text[0] in '"\'':
        text = text[1:-1]  # a KeyError's message comes quoted
    text = text.rstrip('.')
    # mmengine's build_from_cfg prefixes "class `X` in path/to/x.py: "
    return re.sub(r'^class `[^`]+` in [^:]+: ', '', text) or \
        type(err).__name__


def dataset_labels(dataset) -> np.ndarray:
    """Ground-truth label of every sample, from annotations only."""
    labels = []
    for i in range(len(dataset)):
        gt = dataset.get_data_info(i).get('gt_label', -1)
        if np.ndim(gt) > 0:
            raise UserError('multi-label datasets are not supported: sample '
                            f'{i} has gt_label {gt!r}')
        labels.append(int(gt))
    return np.asarray(labels, dtype=np.int64)


def dataset_classes(dataset, fallback: Optional[Sequence[str]] = None
                    ) -> Optional[List[str]]:
    """Class names from the dataset's metainfo, else from the checkpoint."""
    classes = getattr(dataset, 'metainfo', {}).get('classes', None)
    if classes is None and fallback:
        classes = fallback
    return None if classes is None else [str(c) for c in classes]


def image_paths(dataset, indices: Sequence[int]) -> List[str]:
    """The ``img_path`` of each chosen sample ('' where it has none).

    Made absolute against the current folder (a config's relative
    ``data_root`` means that folder), so the run's later tools find the
    images from any folder; URLs stay as they are.
    """
    from tsneviz.data.paths import absolute
    return [absolute(str(dataset.get_data_info(int(i)).get('img_path', '')
                         or '')) for i in indices]


class SampleSubset(Dataset):
    """The chosen samples of a dataset, naming the image when one fails.

    mmpretrain's pipelines fail with messages that rarely name the file;
    this wrapper re-raises with the image path first, so the CLI can say
    which file to fix.

    Args:
        dataset (BaseDataset): The full dataset.
        indices (Sequence[int]): Dataset indices to expose, in order.
    """

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        self.metainfo = getattr(dataset, 'metainfo', {})

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int):
        index = self.indices[position]
        try:
            return self.dataset[index]
        except Exception as err:
            path = self.dataset.get_data_info(index).get('img_path', index)
            reason = str(err).strip().splitlines()
            reason = reason[-1] if reason else type(err).__name__
            raise UnreadableSampleError(f'{path}: {reason}') from None


def build_loader(dataloader_cfg, dataset, indices: Sequence[int],
                 batch_size: Optional[int] = None,
                 num_workers: Optional[int] = None) -> Tuple[object,
                                                             List[int]]:
    """An mmengine dataloader over the chosen samples, sharded by rank.

    The sampler is always mmengine's ``DefaultSampler`` without shuffling,
    so every rank knows which sample positions it reads and rank 0 can put
    the gathered rows back in order.

    Args:
        dataloader_cfg (ConfigDict): ``test_dataloader`` config; its
            ``batch_size``, ``num_workers`` and ``collate_fn`` are used.
        dataset (BaseDataset): The dataset built from it.
        indices (Sequence[int]): Dataset indices to load.
        batch_size (int, optional): Overrides the config. Defaults to None.
        num_workers (int, optional): Overrides the config. Defaults to None.

    Returns:
        tuple: The dataloader, and the sample positions this rank reads.
    """
    from mmengine.runner import Runner

    cfg = copy.deepcopy(dict(dataloader_cfg))
    cfg['dataset'] = SampleSubset(dataset, indices)
    cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
    cfg.setdefault('collate_fn', dict(type='default_collate'))
    cfg.setdefault('batch_size', 32)
    cfg.setdefault('num_workers', 0)
    if batch_size is not None:
        cfg['batch_size'] = batch_size
    if num_workers is not None:
        cfg['num_workers'] = num_workers
    if cfg['num_workers'] == 0:
        cfg.pop('persistent_workers', None)
        cfg.pop('prefetch_factor', None)
    loader = Runner.build_dataloader(cfg)
    return loader, list(iter(loader.sampler))
