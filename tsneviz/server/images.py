"""A sample's image, full size or as a thumbnail, from inside its dataset.

``samples.csv`` says where each image is, and ``samples.csv`` is only a
file: edited, copied from elsewhere or written by a bad config it could
name ``/etc/shadow``. So an image is read only when its path, resolved
with symlinks followed, lies inside the run's dataset root (``run.json``'s
``data_root``, or ``data_prefix`` when there is no root), and only when
Pillow recognises it as an image: the endpoint can hand out pictures of
the dataset and nothing else.
"""
import io
import os
import os.path as osp
from collections import OrderedDict
from threading import Lock
from typing import Tuple

from tsneviz.rundir import Run
from tsneviz.server.security import Forbidden, contained

__all__ = ['THUMB_SIZE', 'dataset_root', 'image_path', 'read_image']

#: Longest side of a thumbnail in pixels.
THUMB_SIZE = 128
# Thumbnails kept in memory (a few kB each): scrolling back is instant.
_CACHE_ITEMS = 4096
_cache: 'OrderedDict[tuple, Tuple[bytes, str]]' = OrderedDict()
_cache_lock = Lock()
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
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f'not a readable image: {err}') from None
    if size == 'full':
        return result  # full images can be big: only thumbnails are kept
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > _CACHE_ITEMS:
            _cache.popitem(last=False)
    return result
