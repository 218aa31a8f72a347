"""Packed thumbnails: a run's images as cells of a few sprite sheets.

One small PNG per image does not scale: a million samples would be a
million files to write, list, copy and serve. Instead every distinct image
is shrunk once into a fixed-size cell of a sheet::

    <run_dir>/thumbs/
        sheet_0.png, sheet_1.png, ...   cells of ``cell`` x ``cell`` px,
                                        row-first, at most ``sheet_px``
                                        wide and high
        index.json                      the index (below), written last
        index.js                        the same index as a <script> for
                                        the explorer page (file:// cannot
                                        fetch JSON)

Thumbnail ``t`` lies in sheet ``t // per_sheet``, in cell ``t % per_sheet``
(column ``cell % cols``, row ``cell // cols``), at the cell's top-left
corner, ``sizes[t]`` = (width, height) pixels of it; images are shrunk to
fit the cell and never enlarged, so a reader scales them (the explorer
with pixelated rendering). ``ids[i]`` is the thumbnail of sample ``i``, -1
where its image is missing or unreadable (``sizes`` 0 x 0).

Images are deduplicated by path, not by content: two files with the same
pixels are rare in datasets, and finding them means decoding (or hashing)
every image, which is the very cost the reuse of a pack saves; the path is
also what ``samples.csv`` and every reader key on.

The explorer, the server (``size=thumb`` images and the sheets by URL) and
the projector export (``sprite.png``) all read these; only
:func:`pack_thumbnails` decodes images, in a process pool for large runs.
"""
import base64
import hashlib
import json
import logging
import math
import multiprocessing
import os
import os.path as osp
import re
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tsneviz.errors import UserError
from tsneviz.rundir.files import THUMBS
from tsneviz.rundir.io import (
    MAX_JSON_BYTES,
    atomic_write,
    open_regular,
    read_regular,
    write_text,
)

__all__ = ['INDEX_JSON', 'INDEX_SCRIPT', 'INDEX_GLOBAL', 'DEFAULT_CELL',
           'DEFAULT_SHEET_PX', 'PackedThumbnails', 'thumb_ids',
           'pack_thumbnails', 'read_packed', 'packed_for', 'sheet_file']

log = logging.getLogger(__name__)

INDEX_JSON = 'index.json'
INDEX_SCRIPT = 'index.js'
#: The global ``index.js`` sets for the page.
INDEX_GLOBAL = '__tsneviz_thumbs'
FORMAT = 1
DEFAULT_CELL = 64
#: 2048 px sheets hold 1024 cells of 64 px: about 1000 files for a million
#: images, and one sheet decoded in a browser is 16 MB, so a page showing
#: thumbnails from a hundred sheets at once stays within memory.
DEFAULT_SHEET_PX = 2048
#: From this many distinct images decoding runs in a process pool; below
#: it starting the workers costs more than it saves.
POOL_MIN_IMAGES = 2000
_CHUNK = 256  # images per task sent to a worker
_SHEET = re.compile(r'^sheet_\d+\.png$')
_REPACK = ('write the explorer again (tools/explore.py) to repack the '
           'thumbnails')
_LEGACY = re.compile(r'^\d+\.png$')  # one file per image, written before


def sheet_file(sheet: int) -> str:
    """``sheet_<i>.png``: the file name of sheet ``i`` in ``thumbs/``."""
    return f'sheet_{int(sheet)}.png'


def thumb_ids(paths: Sequence[str]) -> np.ndarray:
    """Per sample, the number of its distinct image, in order of first use.

    Examples:
        >>> thumb_ids(['a.png', 'b.png', 'a.png'])
        array([0, 1, 0], dtype=int32)
    """
    first: Dict[str, int] = {}
    return np.array([first.setdefault(p, len(first)) for p in paths],
                    dtype=np.int32)


def _paths_digest(paths: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path).encode('utf-8', 'surrogateescape') + b'\0')
    return digest.hexdigest()


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).astype(
        array.dtype.newbyteorder('<')).tobytes()).decode('ascii')


def _unb64(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


class PackedThumbnails:
    """The index of a run's packed thumbnails, and their pixels.

    Attributes:
        folder (str): The ``thumbs/`` folder.
        cell (int): Side of a cell in pixels (the thumbnail size).
        cols (int): Cells per sheet row.
        per_sheet (int): Cells per sheet.
        sheets (list[dict]): ``file``, ``width``, ``height`` per sheet.
        sizes (np.ndarray): uint16 (M, 2) width and height per thumbnail,
            0 where its image could not be read.
        ids (np.ndarray): int32 (N,) thumbnail per sample, -1 for none.
        digest (str): SHA-256 of the samples' image paths it was made for.

    Examples:
        >>> packed = read_packed(run_dir)
        >>> packed.locate(packed.ids[0])
        (0, 0, 0, 32, 32)
        >>> packed.image(0).size
        (32, 32)
    """

    def __init__(self, folder: str, header: dict, sizes: np.ndarray,
                 ids: np.ndarray):
        self.folder = folder
        self.cell = int(header['cell'])
        self.cols = int(header['cols'])
        self.per_sheet = int(header['per_sheet'])
        self.sheets = list(header['sheets'])
        self.digest = str(header['paths_sha256'])
        self.failed = int(header.get('failed', 0))
        self.sizes = sizes.reshape(-1, 2)
        self.ids = ids
        self._load_sheet = lru_cache(maxsize=4)(self._open_sheet)

    def __len__(self) -> int:
        return len(self.sizes)

    def matches(self, paths: Sequence[str]) -> bool:
        """Whether it was packed for these image paths of the samples."""
        return self.digest == _paths_digest([str(p) for p in paths])

    def locate(self, thumb: int) -> Tuple[int, int, int, int, int]:
        """``(sheet, x, y, width, height)`` of a thumbnail in its sheet."""
        thumb = int(thumb)
        if not 0 <= thumb < len(self.sizes):
            raise IndexError(f'no thumbnail {thumb}')
        sheet, cell = divmod(thumb, self.per_sheet)
        row, col = divmod(cell, self.cols)
        w, h = (int(v) for v in self.sizes[thumb])
        return sheet, col * self.cell, row * self.cell, w, h

    def sheet_path(self, sheet: int) -> str:
        return osp.join(self.folder, self.sheets[sheet]['file'])

    def _open_sheet(self, sheet: int):
        from PIL import Image

        path = self.sheet_path(sheet)
        # inside the run folder: thumbs/ itself must not be a link either
        with open_regular(path, inside=osp.dirname(self.folder)) as f, \
                Image.open(f) as image:
            # checked before the pixels are decoded: a sheet is never
            # larger than its cells
            most = (self.cols * self.cell,
                    self.per_sheet // self.cols * self.cell)
            if image.format != 'PNG' or image.width > most[0] or \
                    image.height > most[1]:
                raise UserError(f'{path} is not a sheet of {most[0]} x '
                                f'{most[1]} px at most; {_REPACK}')
            image.load()
            return image

    def thumbnail(self, thumb: int):
        """The PIL image of thumbnail ``thumb``; None for a broken image."""
        sheet, x, y, w, h = self.locate(thumb)
        if not w or not h:
            return None
        return self._load_sheet(sheet).crop((x, y, x + w, y + h))

    def image(self, sample: int):
        """The thumbnail of sample ``sample``; None where it has none."""
        thumb = int(self.ids[sample])
        return None if thumb < 0 else self.thumbnail(thumb)

    def files(self) -> List[str]:
        """Its files, relative to the run directory, the index last."""
        return [f'{THUMBS}/{s["file"]}' for s in self.sheets] + [
            f'{THUMBS}/{INDEX_SCRIPT}', f'{THUMBS}/{INDEX_JSON}']


def read_packed(run_dir: str) -> Optional[PackedThumbnails]:
    """The run's packed thumbnails; None where there are none (yet).

    Raises:
        UserError: ``thumbs/index.json`` is damaged or a sheet is missing.

    Examples:
        >>> read_packed(run_dir).cell
        64
    """
    folder = osp.join(run_dir, THUMBS)
    path = osp.join(folder, INDEX_JSON)
    if not osp.isfile(path):
        return None
    try:
        header = json.loads(read_regular(path, MAX_JSON_BYTES, run_dir))
        if not isinstance(header, dict) or header.get('format') != FORMAT:
            return None  # another version's layout: make it again
        packed = PackedThumbnails(folder, header,
                                  _unb64(header['sizes'], '<u2'),
                                  _unb64(header['ids'], '<i4'))
        _check_index(packed)
    except (OSError, ValueError, KeyError, TypeError, AttributeError,
            UserError) as err:
        raise UserError(f'{path} is damaged ({err}); {_REPACK}') from None
    for i in range(len(packed.sheets)):
        if not osp.isfile(packed.sheet_path(i)):
            raise UserError(f'{packed.sheet_path(i)} is missing; {_REPACK}')
    return packed


def _check_index(packed: PackedThumbnails) -> None:
    """Refuse an index that names files outside ``thumbs/`` or cells that
    are not in its sheets.

    The index is data from the run directory: a sheet is read only under
    the name the packer gives it (``sheet_<i>.png``, no folder), and every
    thumbnail and sample must point into the sheets listed.
    """
    if min(packed.cell, packed.cols, packed.per_sheet) < 1 or \
            packed.per_sheet % packed.cols:
        raise ValueError('cell, cols and per_sheet must be positive, '
                         'per_sheet a multiple of cols')
    for i, sheet in enumerate(packed.sheets):
        if not isinstance(sheet, dict) or sheet.get('file') != sheet_file(i):
            raise ValueError(f'sheet {i} must be the file {sheet_file(i)} '
                             'of the thumbs folder')
    if len(packed.sizes) > len(packed.sheets) * packed.per_sheet:
        raise ValueError(f'{len(packed.sizes)} thumbnails do not fit in '
                         f'{len(packed.sheets)} sheets')
    if len(packed.ids) and (packed.ids.min() < -1 or
                            packed.ids.max() >= len(packed.sizes)):
        raise ValueError('a sample points to a thumbnail that is not packed')


def packed_for(run_dir: str, paths: Sequence[str], size: Optional[int] = None,
               show_progress: bool = False) -> PackedThumbnails:
    """The run's packed thumbnails for ``paths``, packed where missing.

    Args:
        run_dir (str): The run directory.
        paths (Sequence[str]): Image path of every sample.
        size (int, optional): Cell size wanted; None takes a pack of any
            size, or packs at :data:`DEFAULT_CELL`. Defaults to None.
        show_progress (bool): Draw a progress bar. Defaults to False.

    Returns:
        PackedThumbnails: A pack whose samples are ``paths``.

    Examples:
        >>> packed_for(run_dir, Run(run_dir).image_paths).cell
        64
    """
    try:
        packed = read_packed(run_dir)
    except UserError:
        packed = None  # damaged: packed again
    if packed is not None and packed.matches(paths) and \
            size in (None, packed.cell):
        return packed
    return pack_thumbnails(run_dir, paths, size or DEFAULT_CELL,
                           show_progress=show_progress)


def _decode(path: str, size: int):
    """One image as ``(mode, width, height, pixels)``; None if unreadable.

    Runs in the worker processes: it returns raw bytes, which cross the
    process boundary faster than a pickled PIL image.
    """
    from PIL import Image

    from tsneviz.data.display import to_display
    try:
        with Image.open(path) as image:
            image.draft('RGB', (size, size))  # fast JPEG shrink
            image = to_display(image, grey=True)  # 16-bit scaled
            image.thumbnail((size, size), Image.Resampling.LANCZOS)
            return image.mode, image.width, image.height, image.tobytes()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        # a missing or broken image should not cost the whole pack
        return None


def _decode_chunk(paths: Sequence[str], size: int) -> list:
    return [_decode(p, size) for p in paths]


def _decoded(paths: Sequence[str], size: int, workers: int):
    """Yield decoded thumbnails of ``paths`` in order, chunk by chunk."""
    chunks = [paths[i:i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    if workers <= 1 or len(paths) < POOL_MIN_IMAGES:
        for chunk in chunks:
            yield _decode_chunk(chunk, size)
        return
    # imported here so that forked workers inherit it (the tsneviz.data
    # package imports torch, seconds per worker); spawned ones import it
    import tsneviz.data.display  # noqa: F401
    # fork is fastest, but forking a process with other threads (a server
    # packing on request) can copy a lock held mid-way: spawn there
    method = 'fork' if threading.active_count() == 1 and \
        'fork' in multiprocessing.get_all_start_methods() else 'spawn'
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing
                             .get_context(method)) as pool:
        # in order, so sheets fill cell by cell; a few chunks ahead only,
        # so decoded pixels wait in memory for sheets no more than that
        ahead = deque()
        for chunk in chunks:
            ahead.append(pool.submit(_decode_chunk, chunk, size))
            if len(ahead) > 4 * workers:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def _compose(cells: list, cols: int, cell: int):
    """One sheet from decoded thumbnails, in the smallest mode that fits."""
    from PIL import Image

    modes = {c[0] for c in cells if c is not None}
    mode = ('RGBA' if 'RGBA' in modes else
            'L' if modes <= {'L'} else 'RGB')
    rows = max(1, math.ceil(len(cells) / cols))
    width = min(len(cells), cols) * cell
    sheet = Image.new(mode, (max(width, cell), rows * cell))
    for i, found in enumerate(cells):
        if found is None:
            continue
        m, w, h, data = found
        tile = Image.frombytes(m, (w, h), data)
        if m != mode:
            tile = tile.convert(mode)
        row, col = divmod(i, cols)
        sheet.paste(tile, (col * cell, row * cell))
    return sheet


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def pack_thumbnails(run_dir: str, paths: Sequence[str],
                    size: int = DEFAULT_CELL,
                    sheet_px: int = DEFAULT_SHEET_PX,
                    workers: Optional[int] = None,
                    show_progress: bool = False) -> PackedThumbnails:
    """Pack a thumbnail of every distinct image of a run into sheets.

    A pack already there for the same image paths and ``size`` is
    returned as it is. Otherwise the old index is removed first, the
    sheets are written, and the index last (each file atomically), so a
    stopped pack never looks whole.

    Args:
        run_dir (str): The run directory (``thumbs/`` is made in it).
        paths (Sequence[str]): Image path of every sample, as in
            ``samples.csv``.
        size (int): Cell side: longest side of a thumbnail in pixels.
            Defaults to 64.
        sheet_px (int): Largest sheet side in pixels. Defaults to 2048.
        workers (int, optional): Decoding processes; None uses every CPU
            from :data:`POOL_MIN_IMAGES` distinct images. Defaults to None.
        show_progress (bool): Draw a progress bar. Defaults to False.

    Returns:
        PackedThumbnails: The pack; ``ids`` is -1 where an image could
        not be read (their number is logged as a warning).

    Examples:
        >>> packed = pack_thumbnails(run_dir, Run(run_dir).image_paths)
        >>> packed.ids[:3], len(packed.sheets)
        (array([0, 1, 2], dtype=int32), 1)
    """
    from tsneviz.progress import progress_bar

    if int(size) != size or size < 8:
        raise UserError(f'thumbnail size must be an integer >= 8, got {size}')
    if int(sheet_px) != sheet_px or sheet_px < size:
        raise UserError(f'sheet_px must be an integer >= the thumbnail size '
                        f'{size}, got {sheet_px}')
    size, sheet_px = int(size), int(sheet_px)
    paths = [str(p) for p in paths]
    digest = _paths_digest(paths)
    try:
        previous = read_packed(run_dir)
    except UserError:
        previous = None  # damaged: packed again below
    if previous is not None and previous.digest == digest and \
            previous.cell == size and previous.cols == sheet_px // size:
        return previous

    folder = osp.join(run_dir, THUMBS)
    os.makedirs(folder, exist_ok=True)
    for name in (INDEX_JSON, INDEX_SCRIPT):
        _remove(osp.join(folder, name))  # the old index must not outlive
    ids = thumb_ids(paths)
    unique = [None] * (int(ids.max()) + 1 if len(ids) else 0)
    for path, t in zip(paths, ids.tolist()):
        unique[t] = path
    cols = sheet_px // size
    per_sheet = cols * (sheet_px // size)
    if workers is None:
        # the CPUs this process may use (a container's, a taskset's)
        workers = len(os.sched_getaffinity(0)) if hasattr(
            os, 'sched_getaffinity') else os.cpu_count() or 1
    sizes = np.zeros((len(unique), 2), np.uint16)
    sheets, cells = [], []

    def flush():
        sheet = _compose(cells, cols, size)
        name = sheet_file(len(sheets))
        atomic_write(osp.join(folder, name),
                     lambda f: sheet.save(f, format='PNG'))
        sheets.append(dict(file=name, width=sheet.width,
                           height=sheet.height))
        cells.clear()

    done = 0
    with progress_bar('Thumbnails', len(unique), show_progress) as bar:
        for chunk in _decoded(unique, size, workers):
            for found in chunk:
                if found is not None:
                    sizes[done] = found[1], found[2]
                cells.append(found)
                done += 1
                if len(cells) == per_sheet:
                    flush()
            bar(advance=len(chunk))
    if cells or not sheets:
        flush()
    # sheets of a larger earlier pack, and one-file-per-image thumbnails
    keep = {s['file'] for s in sheets}
    for entry in os.scandir(folder):
        if (_SHEET.match(entry.name) and entry.name not in keep) or \
                _LEGACY.match(entry.name):
            _remove(entry.path)

    broken = np.flatnonzero(sizes[:, 0] == 0)
    if len(broken):
        ids = np.where(np.isin(ids, broken), -1, ids).astype(np.int32)
        log.warning('%d of %d images could not be read; they have no '
                    'thumbnail (first: %s)', len(broken), len(unique),
                    unique[int(broken[0])])
    header = dict(format=FORMAT, cell=size, cols=cols, per_sheet=per_sheet,
                  count=len(unique), failed=int(len(broken)), sheets=sheets,
                  sizes=_b64(sizes))
    # index.js (for the page) first, index.json (what readers check) last
    write_text(osp.join(folder, INDEX_SCRIPT),
               f'window.{INDEX_GLOBAL} = '
               f'{json.dumps(header, separators=(",", ":"))};\n')
    header.update(ids=_b64(ids.astype(np.int32)), paths_sha256=digest)
    write_text(osp.join(folder, INDEX_JSON),
               json.dumps(header, separators=(',', ':')))
    return PackedThumbnails(folder, header, sizes, ids.astype(np.int32))
