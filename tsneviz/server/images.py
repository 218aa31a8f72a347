"""A sample's image, full size or as a thumbnail, from inside its dataset.

``samples.csv`` says where each image is, and ``run.json`` where the
dataset is, and both are only files: edited, copied from elsewhere or
written by a bad config they could name ``/etc/shadow`` and ``/``. So an
image is read only when its path, resolved with symlinks followed, lies
inside the run's dataset root (:func:`dataset_root`: the folder its image
paths start from, which must be a dataset's, not ``/`` or a folder holding
the runs, and inside a ``--data-dir`` when the server has any); it is
opened in the same step as that is checked
(:func:`~tsneviz.rundir.open_regular`), and served only when Pillow
recognises it as an image: the endpoint can hand out pictures of the
dataset and nothing else.

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
from typing import Optional, Sequence, Tuple

from tsneviz.rundir import MANIFEST, THUMBS, Run, UnsafeFile, open_regular
from tsneviz.rundir.thumbs import (
    DEFAULT_CELL,
    INDEX_JSON,
    PackedThumbnails,
    read_packed,
)
from tsneviz.server.security import Forbidden, contained

__all__ = ['THUMB_SIZE', 'MAX_PIXELS', 'MAX_IMAGE_BYTES', 'dataset_root',
           'image_path', 'read_image', 'read_thumbnail', 'packed_thumbnails',
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
#: Largest image file served or shrunk. Photos of a dataset are a few MB;
#: the cap is what keeps a sparse file of a terabyte with an image header
#: from being read into memory.
MAX_IMAGE_BYTES = 256 << 20
# Thumbnails kept in memory (a few kB each): scrolling back is instant.
_CACHE_ITEMS = 4096
_cache: 'OrderedDict[tuple, Tuple[bytes, str]]' = OrderedDict()
_cache_lock = Lock()
# The packs of the runs last read, by run folder: (index mtime, pack).
_packs: 'OrderedDict[str, tuple]' = OrderedDict()
_PACKS_KEPT = 8
_MEDIA = {'PNG': 'image/png', 'JPEG': 'image/jpeg', 'GIF': 'image/gif',
          'BMP': 'image/bmp', 'WEBP': 'image/webp', 'TIFF': 'image/tiff'}


def dataset_root(run: Run, data_dirs: Sequence[str] = (),
                 served: Optional[str] = None) -> str:
    """The folder a run's images must lie in, resolved; else 403.

    It is where the run says its image paths start: ``data_prefix``, else
    ``data_root`` (``run.json``), resolved with symlinks followed as a
    job's data paths are. A run directory may come from anyone, so that
    record must name a dataset's folder, not widen what is served:

    - with data folders (``--data-dir``) it must lie inside one of them,
      the check a job's dataset passes;
    - without, it must not hold the run itself or the folder served
      (``/`` does, as does a home folder holding the work dir): such a
      folder is no dataset's, and would serve every image beside the runs.

    Args:
        run (Run): The run.
        data_dirs (Sequence[str]): The server's data folders; may be empty.
        served (str, optional): The folder the server serves runs from.

    Raises:
        Forbidden: The run records no absolute dataset folder, or one that
            fails the checks above.

    Examples:
        >>> dataset_root(Run(run_dir))
        '/data/digits/val'
    """
    manifest = run.manifest
    found = next(((field, manifest[field]) for field in
                  ('data_prefix', 'data_root')
                  if isinstance(manifest.get(field), str) and
                  osp.isabs(manifest[field]) and
                  '\0' not in manifest[field]), None)
    # A relative root is relative to wherever the run was started: the
    # server cannot tell, and guessing its own directory could expose it.
    if found is None:
        raise Forbidden(f'the run records no absolute dataset root '
                        f'({MANIFEST} data_prefix / data_root), so its '
                        'images are not served')
    field, value = found
    root = osp.realpath(value)
    if data_dirs:
        if not any(contained(root, d) for d in data_dirs):
            raise Forbidden(f'the run\'s dataset ({field} in {MANIFEST}) is '
                            'outside the data folders (--data-dir), so its '
                            'images are not served')
        return root
    if any(contained(folder, root) for folder in (run.path, served)
           if folder):
        raise Forbidden(f'the run\'s dataset root ({field} in {MANIFEST}) '
                        'holds the run directories, so it is no dataset '
                        'folder and its images are not served; start the '
                        'server with --data-dir naming the dataset\'s '
                        'folder to serve them')
    return root


def image_path(run: Run, position: int, root: str) -> str:
    """The resolved image file of a sample, checked to be in the dataset.

    A relative ``img_path`` is taken relative to the dataset root.

    Args:
        run (Run): The run.
        position (int): The sample's row of ``samples.csv``.
        root (str): Its dataset root, from :func:`dataset_root`.

    Raises:
        Forbidden: The path leaves the dataset root (``..``, an absolute
            path elsewhere, a symlink pointing out).

    Examples:
        >>> image_path(run, 0, dataset_root(run))
        '/data/digits/val/0/10.png'
    """
    path = str(run.table['img_path'][position])
    if '\0' in path:
        raise Forbidden(f'the image path of sample {position} is not a '
                        'valid path; it is not served')
    if not osp.isabs(path):
        path = osp.join(root, path)
    if not contained(path, root):
        raise Forbidden(f'the image of sample {position} is outside the '
                        'run\'s dataset root; it is not served')
    return osp.realpath(path)


def read_image(path: str, size: str,
               root: Optional[str] = None) -> Tuple[bytes, str]:
    """Bytes and media type of an image, or of its PNG thumbnail.

    Args:
        path (str): A checked path from :func:`image_path`.
        size (str): ``'full'`` (the file as it is) or ``'thumb'`` (longest
            side :data:`THUMB_SIZE`, PNG).
        root (str, optional): The resolved dataset root: the file is
            opened from it down, no link followed, so a link swapped in
            after the check is refused. Defaults to None.

    Raises:
        FileNotFoundError: The file is gone.
        Forbidden: It is not a regular file in ``root``, or larger than
            :data:`MAX_IMAGE_BYTES`.
        ValueError: The file is not an image Pillow reads.

    Examples:
        >>> data, media = read_image('/data/digits/val/0/10.png', 'thumb')
        >>> media, data[:4]
        ('image/png', b'\\x89PNG')
    """
    from PIL import Image, UnidentifiedImageError

    from tsneviz.data.display import to_display

    try:
        f = open_regular(path, root, MAX_IMAGE_BYTES)
    except UnsafeFile as err:
        raise Forbidden(f'the image is not served: {err}') from None
    except OSError:
        raise FileNotFoundError(path) from None
    with f:
        st = os.fstat(f.fileno())
        key = (path, size, st.st_ino, st.st_mtime_ns, st.st_size)
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
        try:
            with Image.open(f) as img:
                kind = img.format
                refused = too_many_pixels(*img.size)
                if refused and size != 'full':  # 'full' sends, never decodes
                    raise ValueError(refused)
                if size == 'full':
                    img.verify()  # checks it is an image without decoding
                    f.seek(0)
                    data = f.read(MAX_IMAGE_BYTES + 1)
                    if len(data) > MAX_IMAGE_BYTES:
                        raise Forbidden('the image grew past '
                                        f'{MAX_IMAGE_BYTES} bytes while it '
                                        'was read')
                    result = (data, _MEDIA.get(kind,
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
    if packed is not None and (len(packed.ids) != len(run) or
                               not packed.matches(run.image_paths)):
        packed = None
    with _cache_lock:
        _packs[run.path] = (stamp, packed)
        while len(_packs) > _PACKS_KEPT:
            _packs.popitem(last=False)
    return packed


def read_thumbnail(run: Run, position: int, path: str,
                   root: Optional[str] = None) -> Tuple[bytes, str]:
    """PNG bytes of a sample's thumbnail, cut from the packed sheets.

    Args:
        run (Run): The run.
        position (int): The sample's row of ``samples.csv``.
        path (str): Its image, checked by :func:`image_path`; read only
            when the run has no packed thumbnails.
        root (str, optional): The dataset root, as :func:`read_image`
            takes it. Defaults to None.

    Raises:
        FileNotFoundError: No pack, and the image is gone.
        ValueError: The image is not one Pillow reads (no thumbnail in the
            pack either), or its sheet is not.
        UserError: The pack's index or a sheet is damaged, or is no
            regular file inside the run (naming it).

    Examples:
        >>> root = dataset_root(run)
        >>> data, media = read_thumbnail(run, 0, image_path(run, 0, root))
        >>> media, data[:4]
        ('image/png', b'\\x89PNG')
    """
    from PIL import Image

    packed = packed_thumbnails(run)
    if packed is None:
        return read_image(path, 'thumb', root)
    thumb = int(packed.ids[position])
    if thumb < 0:
        raise ValueError('not a readable image (it has no thumbnail)')
    key = (packed.folder, packed.digest, packed.cell, thumb)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        image = packed.thumbnail(thumb)
    except (OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError('its thumbnail sheet is not a readable image '
                         f'({err}); write the explorer again '
                         '(tools/explore.py) to repack it') from None
    if image is None:
        raise ValueError('not a readable image (it has no thumbnail)')
    out = io.BytesIO()
    image.save(out, format='PNG')
    result = (out.getvalue(), 'image/png')
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > _CACHE_ITEMS:
            _cache.popitem(last=False)
    return result
