"""Demo data: scikit-learn's bundled digits as an image-folder data set.

scikit-learn ships 1797 hand-written digits (8x8 pixels, grey levels 0..16)
inside the package, so they can be had without a network. This module writes
them as PNG images in the folder layout that mmpretrain's ``CustomDataset``
reads (one sub-folder per class)::

    root/
        .complete            # marker, written last (JSON: settings + counts)
        train/0/12.png       # <split>/<class>/<index in load_digits()>.png
        ...
        val/9/1796.png

so that the demo model in ``configs/digits`` can be trained and visualised
with exactly the same code paths as a real data set.
"""

import json
import os
import os.path as osp
import re
import shutil
import tempfile
import time

from tsneviz.errors import UserError

__all__ = ['write_digits', 'MARKER', 'SPLITS', 'CLASSES']

#: Name of the marker file written last into ``root``.
MARKER = '.complete'
#: The split folders, in the order they are written.
SPLITS = ('train', 'val')
#: The class folder names, which are also the class names CustomDataset sees.
CLASSES = tuple(str(i) for i in range(10))

# Bump when the written images would change for the same arguments.
_FORMAT = 1
_FILE_RE = re.compile(r'^\d+\.png$')
# Temporary folders inside root; one left by a killed run is removed after
# _STALE_SECONDS (not at once: another process may be writing into it).
_STAGING = '.staging-'
_STALE_SECONDS = 3600


def write_digits(root, size=32, val_ratio=0.3, seed=0):
    """Write scikit-learn's digits as PNG files for mmpretrain's CustomDataset.

    The 1797 images of :func:`sklearn.datasets.load_digits` are split into
    ``train`` and ``val`` with a stratified split (each class keeps about
    ``val_ratio`` of its images in ``val``), upscaled from 8x8 to
    ``size`` x ``size`` with bilinear interpolation (grey levels 0..16
    scaled to 0..255) and saved as 3-channel RGB PNGs (the three channels are
    equal), as ``root/<split>/<class>/<index>.png`` where ``<index>`` is the
    image's index in ``load_digits()``.

    The call is idempotent: when ``root`` already holds a complete copy written
    with the same arguments (its ``.complete`` marker matches and the files are
    all there) it returns at once without writing anything. Otherwise the
    images are first written into a temporary folder inside ``root`` and moved
    into place, and the marker is written last, so an interrupted run is never
    taken for a complete one; the next call simply writes them again.

    Args:
        root (str | os.PathLike): Folder to write into; created if missing.
            Its ``train`` and ``val`` sub-folders are replaced when they are
            out of date, so do not point it at a folder holding other data.
        size (int): Side of the written square images in pixels. Default 32.
        val_ratio (float): Fraction of each class put into ``val``, strictly
            between 0 and 1. Default 0.3.
        seed (int): Random seed of the split. Default 0.

    Returns:
        dict: Number of images per split and in all, e.g.
        ``{'train': 1257, 'val': 540, 'total': 1797}``.

    Raises:
        UserError: If an argument is out of range, or ``root/train`` or
            ``root/val`` holds files that this function did not write.

    Examples:
        >>> import tempfile
        >>> from tsneviz.demo import write_digits
        >>> root = tempfile.mkdtemp()
        >>> write_digits(root)
        {'train': 1257, 'val': 540, 'total': 1797}
        >>> write_digits(root)  # already there: returns at once
        {'train': 1257, 'val': 540, 'total': 1797}

        From the shell, ``python tools/make_digits.py --out data/digits``.
    """
    size = int(size)
    val_ratio = float(val_ratio)
    seed = int(seed)
    if size < 1:
        raise UserError(f'size must be a positive number of pixels, '
                        f'got {size}')
    if not 0.0 < val_ratio < 1.0:
        raise UserError(f'val_ratio must be between 0 and 1 (exclusive), '
                        f'got {val_ratio}')
    root = os.fspath(root)
    settings = dict(format=_FORMAT, size=size, val_ratio=val_ratio,
                    seed=seed)

    counts = _complete_counts(root, settings)
    if counts is not None:
        return counts

    # Imported here so that the quick path above stays cheap.
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images, labels = digits.images, digits.target
    index = np.arange(len(labels))
    train_idx, val_idx = train_test_split(
        index, test_size=val_ratio, stratify=labels, random_state=seed)
    split_idx = dict(train=np.sort(train_idx), val=np.sort(val_idx))

    os.makedirs(root, exist_ok=True)
    marker = osp.join(root, MARKER)
    # Out of date or half written: drop the marker first, so that a run
    # interrupted from here on is never taken for complete.
    if osp.lexists(marker):
        os.remove(marker)
    for split in SPLITS:
        _check_ours(osp.join(root, split))

    _remove_stale_staging(root)
    staging = tempfile.mkdtemp(prefix=_STAGING, dir=root)
    try:
        counts = {}
        for split in SPLITS:
            split_dir = osp.join(staging, split)
            per_class = {c: 0 for c in CLASSES}
            for name in CLASSES:
                os.makedirs(osp.join(split_dir, name))
            for i in split_idx[split]:
                name = CLASSES[int(labels[i])]
                pixels = np.clip(images[i] * (255.0 / 16.0), 0, 255)
                img = Image.fromarray(np.round(pixels).astype(np.uint8), 'L')
                if size != img.width:
                    img = img.resize((size, size), Image.BILINEAR)
                img.convert('RGB').save(
                    osp.join(split_dir, name, f'{int(i)}.png'))
                per_class[name] += 1
            counts[split] = per_class
        for split in SPLITS:
            dst = osp.join(root, split)
            if osp.lexists(dst):
                shutil.rmtree(dst)
            os.replace(osp.join(staging, split), dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    totals = {split: sum(counts[split].values()) for split in SPLITS}
    totals['total'] = sum(totals.values())
    info = dict(settings, counts=totals, per_class=counts)
    tmp = marker + f'.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, marker)
    return totals


def _complete_counts(root, settings):
    """Counts from ``root``'s marker if it is complete for ``settings``.

    Returns None when the marker is missing, unreadable, written with other
    settings, or when a class folder does not hold the number of files the
    marker promises.
    """
    try:
        with open(osp.join(root, MARKER)) as f:
            info = json.load(f)
        if any(info.get(k) != v for k, v in settings.items()):
            return None
        per_class = info['per_class']
        for split in SPLITS:
            for name in CLASSES:
                folder = osp.join(root, split, name)
                found = sum(1 for e in os.scandir(folder)
                            if _FILE_RE.match(e.name))
                if found != per_class[split][name]:
                    return None
        return {k: int(info['counts'][k]) for k in SPLITS + ('total',)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _check_ours(split_dir):
    """Refuse to delete a split folder that holds files we did not write."""
    if not osp.lexists(split_dir):
        return
    if not osp.isdir(split_dir) or osp.islink(split_dir):
        raise UserError(f'{split_dir} exists and is not a folder written by '
                        f'write_digits; remove it or choose another root')
    for entry in os.scandir(split_dir):
        ok = (entry.name in CLASSES and entry.is_dir(follow_symlinks=False)
              and all(_FILE_RE.match(e.name) and e.is_file()
                      for e in os.scandir(entry.path)))
        if not ok:
            raise UserError(f'{split_dir} holds {entry.name!r}, which '
                            f'write_digits did not write; remove it or '
                            f'choose another root')


def _remove_stale_staging(root):
    """Remove staging folders that a killed run left in ``root``."""
    now = time.time()
    for entry in os.scandir(root):
        if entry.name.startswith(_STAGING) and entry.is_dir(
                follow_symlinks=False):
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime > \
                        _STALE_SECONDS:
                    shutil.rmtree(entry.path, ignore_errors=True)
            except OSError:
                pass
