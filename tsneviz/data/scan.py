"""Image files found by folder scans, and the ones a scan leaves out.

Three scans read image folders: mmpretrain's ``CustomDataset`` without an
``ann_file`` (the files of its class folders whose extension is in its
``extensions``, mmpretrain's ``IMG_EXTENSIONS`` by default: no ``.webp``,
no ``.gif``), the images folder of a plain feature run
(:func:`tsneviz.data.matrix.load_images`) and ``tools/place.py --images``
(:func:`tsneviz.analysis.placement.list_images`). Each keeps the files of
its extensions and drops the others; a dropped image is data that silently
went missing, so :func:`warn_skipped` names them in one log line, with how
to read them too. An image file is one whose extension is a format
Pillow reads.
"""
import functools
import logging
import os
import os.path as osp
from collections import Counter
from typing import List, Sequence, Tuple

from PIL import Image, ImageFile

__all__ = ['IMAGE_EXTENSIONS', 'is_image_name', 'image_files',
           'dataset_skipped', 'warn_skipped']

log = logging.getLogger(__name__)

#: Extensions tsneviz's own folder scans read (lower case).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                    '.tiff', '.webp')
#: Skipped files named in the log line; the rest are counted.
EXAMPLES = 3


@functools.lru_cache(maxsize=None)
def _known_extensions() -> frozenset:
    # the formats Pillow opens; its stubs (HDF5 .h5, GRIB...) only name a
    # data file's format, which is no image
    def reads(fmt) -> bool:
        factory = Image.OPEN.get(fmt, (None, ))[0]
        return factory is not None and not (
            isinstance(factory, type) and
            issubclass(factory, ImageFile.StubImageFile))

    return frozenset(ext.lower() for ext, fmt
                     in Image.registered_extensions().items() if reads(fmt))


def is_image_name(name: str) -> bool:
    """Whether a file name has the extension of an image format that
    Pillow reads.

    Examples:
        >>> is_image_name('cat.WEBP'), is_image_name('notes.txt')
        (True, False)
    """
    return osp.splitext(name)[1].lower() in _known_extensions()


def image_files(folder: str, extensions: Sequence[str] = IMAGE_EXTENSIONS
                ) -> Tuple[List[str], List[str]]:
    """The images under ``folder`` of ``extensions``, and those left out.

    Args:
        folder (str): Walked recursively.
        extensions (Sequence[str]): Lower-case extensions kept. Defaults to
            :data:`IMAGE_EXTENSIONS`.

    Returns:
        tuple: The kept paths and the image files of other extensions
        (:func:`is_image_name`, hidden ones aside), each sorted; other
        files are neither.

    Examples:
        >>> kept, skipped = image_files('data/new')
        >>> skipped
        ['data/new/cat/1.gif']
    """
    extensions = tuple(extensions)
    kept, skipped = [], []
    for root, _, files in os.walk(folder):
        for name in files:
            if name.lower().endswith(extensions):
                kept.append(osp.join(root, name))
            elif is_image_name(name) and not name.startswith('.'):
                # a hidden file is nobody's missing sample
                skipped.append(osp.join(root, name))
    return sorted(kept), sorted(skipped)


def dataset_skipped(dataset) -> List[str]:
    """Image files in a folder-scanned dataset's class folders it left out.

    mmpretrain's ``CustomDataset`` without an ``ann_file`` lists its class
    folders (``folder_to_idx``) and keeps the files its ``is_valid_file``
    accepts. This walks the same folders once, as mmengine's local backend
    lists them (hidden files are no samples; folders, linked ones too, are
    walked), and returns the image files it did not accept. Any other
    dataset (an annotation file, a remote root, no folder scan) gives none.

    Args:
        dataset: A built (fully initialised) mmengine dataset.

    Returns:
        list[str]: Paths of the skipped image files, sorted.
    """
    folders = getattr(dataset, 'folder_to_idx', None)
    accepts = getattr(dataset, 'is_valid_file', None)
    root = getattr(dataset, 'img_prefix', None)
    if getattr(dataset, 'ann_file', '') or not folders or \
            not callable(accepts) or not isinstance(root, str) or \
            '://' in root or not osp.isdir(root):
        return []
    skipped = []
    stack = [osp.join(root, folder) for folder in folders]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if not entry.name.startswith('.') and entry.is_file():
                    if not accepts(entry.name) and is_image_name(entry.name):
                        skipped.append(entry.path)
                elif osp.isdir(entry.path):
                    stack.append(entry.path)
    return sorted(skipped)


def warn_skipped(skipped: Sequence[str], root: str, reads: str,
                 how: str) -> None:
    """Log one line: the image files a scan skipped, and what to do.

    Args:
        skipped (Sequence[str]): Their paths (none: nothing is logged).
        root (str): The folder scanned; examples are relative to it.
        reads (str): What the scan reads, e.g. ``'CustomDataset reads
            only .jpg, .png'``.
        how (str): How to read them too.

    Examples:
        >>> warn_skipped(['d/cat/1.gif'], 'd', 'reads only .png',
        ...              'use a list file')
        1 image file was skipped under d (1 .gif; e.g. cat/1.gif): reads
        only .png; use a list file
    """
    if not skipped:
        return
    kinds = Counter(osp.splitext(path)[1].lower() for path in skipped)
    counts = ', '.join(f'{n} {ext}' for ext, n in kinds.most_common())
    examples = ', '.join(osp.relpath(path, root)
                         for path in skipped[:EXAMPLES])
    more = ', ...' if len(skipped) > EXAMPLES else ''
    files = 'file was' if len(skipped) == 1 else 'files were'
    log.warning(f'{len(skipped)} image {files} skipped under '
                f'{osp.normpath(root)} '
                f'({counts}; e.g. {examples}{more}): {reads}; {how}')
