"""Per-class sampling of a labelled dataset."""
from typing import Optional, Sequence

import numpy as np

from tsneviz.errors import UserError

SAMPLING_MODES = ('random', 'first')


def resolve_class_idx(class_idx: Optional[Sequence[int]], max_num_class: int,
                      num_classes: Optional[int]) -> list:
    """The classes to visualise, with mmpretrain's ``vis_tsne.py`` rules.

    Without ``class_idx`` the first ``max_num_class`` classes are taken;
    an explicit ``class_idx`` wins over ``max_num_class``.

    Args:
        class_idx (Sequence[int], optional): Classes asked for.
        max_num_class (int): How many classes when none are named.
        num_classes (int, optional): Classes in the dataset, when known.

    Returns:
        list[int]: Class ids.

    Examples:
        >>> resolve_class_idx(None, 20, 10)
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """
    if max_num_class < 1:
        raise UserError(f'--max-num-class must be at least 1, got '
                        f'{max_num_class}')
    if class_idx is None:
        total = max_num_class if num_classes is None else num_classes
        return list(range(total))[:max_num_class]
    bad = [c for c in class_idx
           if c < 0 or (num_classes is not None and c >= num_classes)]
    if bad:
        valid = (f'0..{num_classes - 1}' if num_classes is not None
                 else 'non-negative ids')
        raise UserError(f'--class-idx {" ".join(map(str, bad))} out of range: '
                        f'the dataset has {num_classes} classes ({valid})')
    return list(dict.fromkeys(int(c) for c in class_idx))


def sample_per_class(labels: np.ndarray, class_idx: Sequence[int],
                     max_num_samples: int, mode: str = 'random',
                     seed: int = 0) -> np.ndarray:
    """Pick at most ``max_num_samples`` indices of each class in ``class_idx``.

    ``'first'`` takes the first ones in dataset order, exactly the samples
    mmpretrain's tool picks. ``'random'`` draws a seeded stratified sample, so
    a class is not represented by whatever its annotation file lists first
    (often one video, one photographer or one day).

    Args:
        labels (np.ndarray): Ground-truth label of every dataset sample.
        class_idx (Sequence[int]): Classes to keep.
        max_num_samples (int): Cap per class.
        mode (str): ``'random'`` or ``'first'``. Defaults to ``'random'``.
        seed (int): Seed of the random draw. Defaults to 0.

    Returns:
        np.ndarray: Sorted dataset indices (int64).

    Examples:
        >>> sample_per_class(np.array([0, 1, 0, 1, 0]), [0], 2, 'first')
        array([0, 2])
    """
    if max_num_samples < 1:
        raise UserError(f'--max-num-samples must be at least 1, got '
                        f'{max_num_samples}')
    if mode not in SAMPLING_MODES:
        raise UserError(f'unknown sampling {mode!r}; choose one of '
                        f'{", ".join(SAMPLING_MODES)}')
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    picked = []
    for cls in class_idx:
        members = np.flatnonzero(labels == cls)
        if mode == 'first' or len(members) <= max_num_samples:
            picked.append(members[:max_num_samples])
        else:
            picked.append(rng.choice(members, max_num_samples, replace=False))
    if not picked:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(picked)).astype(np.int64)
