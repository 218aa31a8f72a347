"""The per-class sample of a dataset that a run looks at."""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from tsneviz.errors import UserError

from .loader import build_dataset, dataset_classes, dataset_labels
from .sampling import resolve_class_idx, sample_per_class


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


def image_prefix(dataset) -> Optional[str]:
    """Where the dataset's ``img_path`` values start (its ``data_prefix``).

    Examples:
        >>> image_prefix(dataset)
        'data/digits/val'
    """
    prefix = getattr(dataset, 'data_prefix', None) or {}
    return prefix.get('img_path') if isinstance(prefix, dict) else None
