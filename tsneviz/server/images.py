"""A sample's image, full size or as a thumbnail, from inside its dataset.

``samples.csv`` says where each image is, and ``samples.csv`` is only a
file: edited, copied from elsewhere or written by a bad config it could
name ``/etc/shadow``. So an image is read only when its path, resolved
with symlinks followed, lies inside the run's dataset root (``run.json``'s
``data_root``, or ``data_prefix`` when there is no root), and only when
Pillow recognises it as an image: the endpoint can hand out pictures of
the dataset and nothing else.

A thumbnail is cut from the run's packed thumbnails
(:mod:`tsneviz.rundir.thumbs`, written with the explorer), so serving one
decodes no dataset image; a run without them (no explorer yet) has its
thumbnails made from the image itself, at the same size.
"""
import io
import math
import os
import os.path as osp
import re
from collections import OrderedDict
from threading import Lock
from typing import Optional, Tuple

from tsneviz.rundir import THUMBS, Run
from tsneviz.rundir.thumbs import (DEFAULT_CELL, INDEX_JSON,
                                   PackedThumbnails, read_packed)
from tsneviz.server.security import Forbidden, contained

__all__ = ['THUMB_SIZE', 'MAX_PIXELS', 'dataset_root', 'image_path',
           'read_image', 'read_thumbnail', 'packed_thumbnails',
           'too_many_pixels']

#: Longest side of a thumbnail made from the image (a run without packed
#: thumbnails): the explorer's default, so both kinds look alike.
THUMB_SIZE = DEFAULT_CELL
#: Most pixels of an image the server decodes (an upload to place, a
#: dataset image to make a thumbnail of), read from its header first. The
#: models take 224 to 518 pixels a side once the test pipeline has resized
#: the image, so more pixels only cost memory: decoding takes about 6
#: bytes a pixel (the colour array and the pipeline's copies; 210 MB for
#: 6000x6000, measured), while a 109 KB PNG can declare 30000x30000.
#: A 24-MP camera frame (6000x4000) fits.
MAX_PIXELS = 6000 * 6000
# Thumbnails kept in memory (a few kB each): scrolling back is instant.
_CACHE_ITEMS = 4096
_cache: 'OrderedDict[tuple, Tuple[bytes, str]]' = OrderedDict()
_cache_lock = Lock()
# The packs of the runs last read, by run folder: (index mtime, pack).
_packs: 'OrderedDict[str, tuple]' = OrderedDict()
_PACKS_KEPT = 8
_MEDIA = {'PNG': 'image/png', 'JPEG': 'image/jpeg', 'GIF': 'image/gif',
          'BMP': 'image/bmp', 'WEBP': 'image/webp', 'TIFF': 'image/tiff'}


def dataset_root(run: Run) -> str:
    """The folder a run's images must lie in; 403 when none is recorded.

    Examples:
        >>> dataset_root(Run(run_dir))
        '/data/digits'
    """
    manifest = run.manifest
    for field in ('data_root', 'data_prefix'):
        value = manifest.get(field)
        if value and osp.isabs(value):
            return value
    # A relative root is relative to wherever the run was started: the
    # server cannot tell, and guessing its own directory could expose it.
    raise Forbidden('the run records no absolute dataset root (run.json '
                    'data_root / data_prefix), so its images are not served')


def image_path(run: Run, position: int) -> str:
    """The resolved image file of a sample, checked to be in the dataset.

    A relative ``img_path`` is taken relative to the dataset root.

    Raises:
        Forbidden: The path leaves the dataset root (``..``, an absolute
            path elsewhere, a symlink pointing out).

    Examples:
        >>> image_path(Run(run_dir), 0)
        '/data/digits/val/0/10.png'
    """
    root = dataset_root(run)
    path = str(run.table['img_path'][position])
    if not osp.isabs(path):
        path = osp.join(root, path)
    if not contained(path, root):
        raise Forbidden(f'the image of sample {position} is outside the '
                        'run\'s dataset root; it is not served')
    return osp.realpath(path)


def read_image(path: str, size: str) -> Tuple[bytes, str]:
    """Bytes and media type of an image, or of its PNG thumbnail.

    Args:
        path (str): A checked path from :func:`image_path`.
        size (str): ``'full'`` (the file as it is) or ``'thumb'`` (longest
            side :data:`THUMB_SIZE`, PNG).

    Raises:
        FileNotFoundError: The file is gone.
        ValueError: The file is not an image Pillow reads.

    Examples:
        >>> data, media = read_image('/data/digits/val/0/10.png', 'thumb')
        >>> media, data[:4]
        ('image/png', b'\\x89PNG')
    """
    from PIL import Image, UnidentifiedImageError

    from tsneviz.data.display import to_display

    try:
        st = os.stat(path)
    except OSError:
        raise FileNotFoundError(path) from None
    key = (path, size, st.st_mtime_ns, st.st_size)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        with Image.open(path) as img:
            kind = img.format
            refused = too_many_pixels(*img.size)
            if refused and size != 'full':  # 'full' sends, never decodes
                raise ValueError(refused)
            if size == 'full':
                img.verify()  # checks it is an image without decoding all
                with open(path, 'rb') as f:
                    result = (f.read(), _MEDIA.get(kind,
                                                   'application/octet-stream'))
            else:
                img = to_display(img)  # 16-bit scaled, not clipped
                img.thumbnail((THUMB_SIZE, THUMB_SIZE))
                out = io.BytesIO()
                img.save(out, format='PNG')
                result = (out.getvalue(), 'image/png')
    except Image.DecompressionBombError as err:
        raise ValueError(too_many_pixels(error=err)) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f'not a readable image: {err}') from None
    if size == 'full':
        return result  # full images can be big: only thumbnails are kept
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > _CACHE_ITEMS:
            _cache.popitem(last=False)
    return result


def too_many_pixels(width: int = 0, height: int = 0,
                    error: Optional[Exception] = None) -> Optional[str]:
    """Why an image is not decoded, from its header; None when it may be.

    Args:
        width (int): Its width, as the header declares it.
        height (int): Its height.
        error (Exception, optional): Pillow's ``DecompressionBombError``,
            raised by ``Image.open`` before the size is known (over twice
            ``Image.MAX_IMAGE_PIXELS``).

    Examples:
        >>> too_many_pixels(30000, 30000)
        'the image is 30000x30000 = 900,000,000 pixels, more than the
        36,000,000 (6000x6000) the server decodes; send it scaled down'
        >>> too_many_pixels(640, 480) is None
        True
    """
    side = math.isqrt(MAX_PIXELS)
    limit = (f'more than the {MAX_PIXELS:,} ({side}x{side}) the server '
             'decodes; send it scaled down')
    if error is not None:
        # Pillow names the pixel count only in its message
        found = re.search(r'\((\d+) pixels\)', str(error))
        count = f'{int(found.group(1)):,} pixels' if found else \
            'too many pixels'
        return f'the image declares {count}, {limit}'
    if width * height <= MAX_PIXELS:
        return None
    return (f'the image is {width}x{height} = {width * height:,} pixels, '
            f'{limit}')


def packed_thumbnails(run: Run) -> Optional[PackedThumbnails]:
    """The run's packed thumbnails, if they are those of its samples.

    A pack made for other image paths (the table was edited since) is not
    used. Kept in memory until its index changes.

    Examples:
        >>> packed_thumbnails(Run(run_dir)).cell
        64
    """
    index = osp.join(run.path, THUMBS, INDEX_JSON)
    try:
        st = os.stat(index)
    except OSError:
        return None
    # written by rename: a new index is a new inode, even within a tick
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    with _cache_lock:
        found = _packs.get(run.path)
    if found is not None and found[0] == stamp:
        return found[1]
    packed = read_packed(run.path)
    if packed is not None and not packed.matches(run.image_paths):
        packed = None
    with _cache_lock:
        _packs[run.path] = (stamp, packed)
        while len(_packs) > _PACKS_KEPT:
            _packs.popitem(last=False)
    return packed


def read_thumbnail(run: Run, position: int, path: str) -> Tuple[bytes, str]:
    """PNG bytes of a sample's thumbnail, cut from the packed sheets.

    Args:
        run (Run): The run.
        position (int): The sample's row of ``samples.csv``.
        path (str): Its image, checked by :func:`image_path`; read only
            when the run has no packed thumbnails.

    Raises:
        FileNotFoundError: No pack, and the image is gone.
        ValueError: The image is not one Pillow reads (no thumbnail in the
            pack either).

    Examples:
        >>> data, media = read_thumbnail(run, 0, image_path(run, 0))
        >>> media, data[:4]
        ('image/png', b'\\x89PNG')
    """
    packed = packed_thumbnails(run)
    if packed is None:
        return read_image(path, 'thumb')
    thumb = int(packed.ids[position])
    if thumb < 0:
        raise ValueError('not a readable image (it has no thumbnail)')
    key = (packed.folder, packed.digest, packed.cell, thumb)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    out = io.BytesIO()
    packed.thumbnail(thumb).save(out, format='PNG')
    result = (out.getvalue(), 'image/png')
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > _CACHE_ITEMS:
            _cache.popitem(last=False)
    return result
