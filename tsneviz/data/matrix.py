"""A plain feature matrix as input: features, labels, images, checked."""
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from tsneviz.errors import UserError

from .scan import IMAGE_EXTENSIONS, image_files, warn_skipped


def load_features(features: Union[str, np.ndarray],
                  min_rows: int = 2) -> np.ndarray:
    """An (N, C) float32 matrix from an array or a ``.npy`` file.

    Args:
        features (str | np.ndarray): The matrix, or a ``.npy`` file of it;
            with ``min_rows=1`` a single (C,) row is taken as (1, C).
        min_rows (int): Fewest rows accepted: 2 for a map of its own, 1
            for rows placed on another map. Defaults to 2.

    Raises:
        UserError: A missing or unreadable file, another shape, too few
            rows, or NaN / Inf values.
    """
    name = features if isinstance(features, str) else 'the features'
    if isinstance(features, str):
        if not osp.isfile(features):
            raise UserError(f'features not found: {features}; pass an (N, C) '
                            '.npy file to --features')
        try:
            features = np.load(features, allow_pickle=False)
        except ValueError as err:
            raise UserError(f'cannot read {name} as a .npy array: {err}'
                            ) from None
    features = np.asarray(features)
    if features.ndim == 1 and min_rows <= 1:
        features = features[None]
    if features.ndim != 2 or len(features) < min_rows:
        raise UserError(f'{name} must be an (N, C) matrix with N >= '
                        f'{min_rows}, got shape {features.shape}')
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise UserError(f'{name} has NaN or Inf values in {int(bad.sum())} '
                        f'of {len(features)} rows (first: row '
                        f'{int(np.flatnonzero(bad)[0])}); remove or fix them')
    # no copy of float32 input: at a million rows that is 2 GB
    return features.astype(np.float32, copy=False)


def load_labels(labels: Union[None, str, Sequence], n: int
                ) -> Tuple[np.ndarray, List[str]]:
    """Labels as class ids plus class names.

    A ``.npy`` file or a sequence of integers gives ids (names are the ids);
    a text file has one label per line: integers, or class names (sorted
    names become ids 0..K-1). Without labels every row is class ``all``.
    """
    if labels is None:
        return np.zeros(n, dtype=np.int64), ['all']
    name = labels if isinstance(labels, str) else 'the labels'
    if isinstance(labels, str):
        if not osp.isfile(labels):
            raise UserError(f'labels not found: {labels}')
        if labels.endswith('.npy'):
            values = list(np.load(labels, allow_pickle=False).reshape(-1))
        else:
            with open(labels, encoding='utf-8') as f:
                values = [line.strip() for line in f if line.strip()]
    else:
        values = list(labels)
    if len(values) != n:
        raise UserError(f'the features have {n} rows but {name} has '
                        f'{len(values)} labels; give one label per row')
    try:
        ids = np.array([int(v) for v in values], dtype=np.int64)
    except (TypeError, ValueError):
        names = sorted({str(v) for v in values})
        index = {c: i for i, c in enumerate(names)}
        return np.array([index[str(v)] for v in values], np.int64), names
    if ids.min() < 0:
        raise UserError(f'{name} has negative class ids; use 0..K-1')
    return ids, [str(i) for i in range(int(ids.max()) + 1)]


def load_images(images: Union[None, str, Sequence[str]], n: int
                ) -> List[str]:
    """The image of each row: a list file, a folder, or a sequence."""
    if images is None:
        return [''] * n
    if isinstance(images, str):
        if osp.isdir(images):
            paths, skipped = image_files(images)
            warn_skipped(skipped, images, 'a folder of images gives only '
                         f'{", ".join(IMAGE_EXTENSIONS)} files',
                         'to use them, list every image in a text file and '
                         'pass that instead')
            where = f'the folder {images}'
        elif osp.isfile(images):
            with open(images, encoding='utf-8') as f:
                paths = [line.strip() for line in f if line.strip()]
            where = images
        else:
            raise UserError(f'images not found: {images}; pass a text file '
                            'of paths or a folder')
    else:
        paths, where = [str(p) for p in images], 'the image list'
    if len(paths) != n:
        raise UserError(f'the features have {n} rows but {where} has '
                        f'{len(paths)} images; give one image per row')
    return [osp.abspath(p) for p in paths]


def common_root(paths: Sequence[str]) -> Optional[str]:
    """The folder all images are under (what a server may serve from)."""
    paths = [p for p in paths if p]
    if not paths:
        return None
    return osp.commonpath([osp.dirname(p) for p in paths])
