"""TensorBoard Embedding Projector export of a run.

The output folder is a TensorBoard log directory on its own::

    <run_dir>/projector/
        projector_config.pbtxt   one ``embeddings { ... }`` per tensor
        feat_3.tsv               (N, C) features (or feat_3.bytes)
        tsne_feat_3.tsv          (N, 2|3) the run's own t-SNE layout
        metadata.tsv             header + one row per sample
        sprite.png               thumbnails, row-first, in sample order
                                 (from the run's packed thumbnails)

and ``tensorboard --logdir <run_dir>/projector`` shows it in the PROJECTOR
tab. Every path in the config is relative to it: TensorBoard refuses asset
paths that resolve outside the folder of ``projector_config.pbtxt``.
"""
import math
import numbers
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np

from tsneviz.errors import UserError
from tsneviz.exporters.base import BaseExporter, coords_of, sample_metadata
from tsneviz.params import Interval, Options
from tsneviz.registry import EXPORTERS
from tsneviz.rundir import (
    PROJECTOR,
    Run,
    atomic_write,
    coords_file,
    write_bytes,
)
from tsneviz.rundir.thumbs import PackedThumbnails, packed_for

CONFIG_FILE = 'projector_config.pbtxt'
METADATA_FILE = 'metadata.tsv'
SPRITE_FILE = 'sprite.png'
# The projector's front end loads one sprite image of at most 8192 x 8192
# pixels (a WebGL texture limit), thumbnails in a square grid, row-first.
MAX_SPRITE_PX = 8192
DEFAULT_THUMBNAIL = 64
# Up to this many values a tensor is written as TSV (readable, exact with 9
# significant digits); above it as raw float32, which is 3-4 times smaller
# and much faster for TensorBoard to load.
TSV_MAX_VALUES = 2_000_000


@EXPORTERS.register_module(name='projector')
class ProjectorExporter(BaseExporter):
    """Write a run as a TensorBoard Embedding Projector log directory.

    Args:
        coords (bool): Also export the run's own t-SNE layout as a tensor
            ``tsne_<key>`` (shown as is by the projector's PCA of a 2-D
            tensor). Defaults to True.
        sprite (bool): Write the thumbnail sprite, from the run's packed
            thumbnails (``thumbs/``, packed first where missing).
            Defaults to True.
        thumbnail_size (int, optional): Thumbnail side in pixels. Defaults
            to None: 64, or less where N thumbnails would not fit in
            8192 x 8192.
        tensor_format (str): ``'tsv'``, ``'bytes'`` (raw little-endian
            float32) or ``'auto'`` (TSV up to 2 million values). Defaults to
            ``'auto'``.

    Examples:
        >>> exporter = ProjectorExporter(thumbnail_size=32)
        >>> exporter.export('work_dirs/digits/tsne_20261123_144017')
        ['/.../projector/feat_3.tsv', ..., '/.../projector_config.pbtxt']
    """

    name = 'projector'
    flags = ('coords', 'sprite')
    constraints = {
        'thumbnail_size': [None, Interval(numbers.Integral, 1,
                                          MAX_SPRITE_PX)],
        'tensor_format': [Options(['auto', 'tsv', 'bytes'])],
    }
    defaults = dict(coords=True, sprite=True, thumbnail_size=None,
                    tensor_format='auto')

    def default_out(self, run: Run, key: Optional[str]) -> str:
        return osp.join(run.path, PROJECTOR)

    def write(self, run: Run, out: str, key: Optional[str]) -> List[str]:
        os.makedirs(out, exist_ok=True)
        keys = [key] if key is not None else list(run.keys)
        tensors = {}
        for k in keys:
            tensors[k] = run.features(k)
            if self.options['coords']:
                # the layout's tensor is named as its file, without .npy
                tensors[osp.splitext(coords_file(run.method, k))[0]] = \
                    coords_of(run, k)
        written, embeddings = [], []
        for name, tensor in tensors.items():
            path = write_tensor(osp.join(out, name), tensor,
                                self.options['tensor_format'])
            written.append(path)
            embeddings.append(dict(tensor_name=name,
                                   tensor_path=osp.basename(path),
                                   tensor_shape=list(tensor.shape),
                                   metadata_path=METADATA_FILE))
        written.append(write_metadata(osp.join(out, METADATA_FILE),
                                      sample_metadata(run)))
        if self.options['sprite']:
            path, size = write_sprite(osp.join(out, SPRITE_FILE),
                                      packed_for(run.path, run.image_paths),
                                      self.options['thumbnail_size'])
            written.append(path)
            for embedding in embeddings:
                embedding['sprite'] = dict(image_path=SPRITE_FILE,
                                           single_image_dim=[size, size])
        # The config names every other file, so it is written after them.
        written.append(write_config(osp.join(out, CONFIG_FILE), embeddings))
        return written


def export_projector(run_dir: str, out: Optional[str] = None,
                     key: Optional[str] = None, **options) -> List[str]:
    """Export a run for TensorBoard's Embedding Projector.

    Args:
        run_dir (str): A complete run directory.
        out (str, optional): Output folder; open it with
            ``tensorboard --logdir OUT``. Defaults to
            ``<run_dir>/projector``.
        key (str, optional): Feature key to export. Defaults to None (every
            key of the run).
        **options: See :class:`ProjectorExporter`.

    Returns:
        list[str]: Paths written; ``projector_config.pbtxt`` last.

    Examples:
        >>> export_projector('work_dirs/digits/tsne_20261123_144017',
        ...                  thumbnail_size=28)[-1]
        '/.../tsne_20261123_144017/projector/projector_config.pbtxt'
    """
    return ProjectorExporter(**options).export(run_dir, out, key)


def write_tensor(stem: str, tensor: np.ndarray, fmt: str = 'auto') -> str:
    """Write a 2-D tensor as ``stem.tsv`` or ``stem.bytes``; return the path.

    TensorBoard reads a tensor file as TSV first and falls back to raw
    float32 (with the config's ``tensor_shape``) on a decoding error.
    """
    tensor = np.ascontiguousarray(tensor, dtype='<f4')
    if tensor.ndim != 2:
        raise ValueError(f'expected a 2-D tensor, got shape {tensor.shape}')
    if fmt == 'auto':
        fmt = 'tsv' if tensor.size <= TSV_MAX_VALUES else 'bytes'
    if fmt == 'bytes':
        return write_bytes(stem + '.bytes', tensor.tobytes())
    # 9 significant digits give back the very same float32.
    return atomic_write(stem + '.tsv', lambda f: np.savetxt(
        f, tensor, fmt='%.9g', delimiter='\t', newline='\n'))


def write_metadata(path: str, columns: Dict[str, List[str]]) -> str:
    """Write projector metadata: a header row, then one row per point.

    The projector reads a header only when there are several columns, and
    splits on tabs and newlines, so those are replaced in values.
    """
    names = list(columns)
    if len(names) < 2:
        raise ValueError('the projector needs two or more metadata columns '
                         'for a header row to be read')

    def clean(value) -> str:
        return ' '.join(str(value).replace('\t', ' ').splitlines())

    lines = ['\t'.join(clean(n) for n in names)]
    lines += ['\t'.join(clean(v) for v in row)
              for row in zip(*(columns[n] for n in names))]
    return write_bytes(path, ('\n'.join(lines) + '\n').encode('utf-8'))


def thumbnail_size_for(n: int, requested: Optional[int] = None) -> int:
    """Side of a thumbnail so that ``n`` of them fit one sprite image.

    Args:
        n (int): Number of thumbnails.
        requested (int, optional): Wanted size. Defaults to None (64 or the
            largest that fits).

    Returns:
        int: The thumbnail side in pixels.

    Examples:
        >>> thumbnail_size_for(100), thumbnail_size_for(50000)
        (64, 36)
    """
    grid = max(1, math.ceil(math.sqrt(n)))
    largest = MAX_SPRITE_PX // grid
    if largest < 1:
        raise UserError(f'{n} thumbnails do not fit one {MAX_SPRITE_PX}x'
                        f'{MAX_SPRITE_PX} sprite image; export with '
                        'sprite=False or sample fewer images')
    if requested is None:
        return min(DEFAULT_THUMBNAIL, largest)
    if requested > largest:
        raise UserError(f'thumbnail_size {requested} is too large for {n} '
                        f'images: a {grid}x{grid} grid of them must fit in '
                        f'{MAX_SPRITE_PX}x{MAX_SPRITE_PX} pixels, so at most '
                        f'{largest}')
    return requested


def write_sprite(path: str, packed: PackedThumbnails,
                 thumbnail_size: Optional[int] = None):
    """Tile the samples' thumbnails into one square sprite, row-first.

    Each sample's packed thumbnail (:mod:`tsneviz.rundir.thumbs`) is
    scaled to fit a square thumbnail, keeping its aspect ratio, and
    centred on white (the projector's background): no image is decoded
    again, which at a million samples is most of the cost.

    Args:
        path (str): The PNG to write.
        packed (PackedThumbnails): The run's packed thumbnails.
        thumbnail_size (int, optional): See :func:`thumbnail_size_for`.

    Returns:
        tuple[str, int]: The path and the thumbnail side in pixels.

    Raises:
        UserError: A sample has no thumbnail (its image is missing or
            unreadable).

    Examples:
        >>> write_sprite('sprite.png', packed_for(run_dir, paths))
        ('sprite.png', 64)
    """
    from PIL import Image

    n = len(packed.ids)
    size = thumbnail_size_for(n, thumbnail_size)
    missing = np.flatnonzero(packed.ids < 0)
    if len(missing):
        raise UserError(f'{len(missing)} sample(s) have no readable image '
                        f'(first: sample {int(missing[0])}); the sprite '
                        'needs every image of the run (or export with '
                        'sprite=False)')
    grid = max(1, math.ceil(math.sqrt(n)))
    sprite = Image.new('RGB', (grid * size, grid * size), (255, 255, 255))
    for i in range(n):
        row, col = divmod(i, grid)
        sprite.paste(thumbnail(packed.image(i), size),
                     (col * size, row * size))
    return atomic_write(path, lambda f: sprite.save(f, format='PNG')), size


def thumbnail(image, size: int):
    """``image`` as an RGB ``size`` x ``size`` thumbnail (aspect kept)."""
    from PIL import ImageOps

    from tsneviz.data.display import to_display
    return ImageOps.pad(to_display(image).convert('RGB'), (size, size),
                        color=(255, 255, 255))


def write_config(path: str, embeddings: List[dict]) -> str:
    """Write ``projector_config.pbtxt`` (protobuf text format) by hand.

    The message is tiny (``ProjectorConfig`` of TensorBoard's
    ``projector_config.proto``), so writing it needs no TensorBoard or
    protobuf at export time.

    Args:
        path (str): The file to write.
        embeddings (list[dict]): ``EmbeddingInfo`` fields: ``tensor_name``,
            ``tensor_path``, ``tensor_shape``, ``metadata_path`` and
            optionally ``sprite=dict(image_path, single_image_dim)``.
    """
    lines = []
    for emb in embeddings:
        lines.append('embeddings {')
        for field in ('tensor_name', 'tensor_path', 'metadata_path'):
            if emb.get(field):
                lines.append(f'  {field}: {_quote(emb[field])}')
        lines += [f'  tensor_shape: {int(d)}' for d in emb['tensor_shape']]
        if emb.get('sprite'):
            lines.append('  sprite {')
            lines.append(
                f'    image_path: {_quote(emb["sprite"]["image_path"])}')
            lines += [f'    single_image_dim: {int(d)}'
                      for d in emb['sprite']['single_image_dim']]
            lines.append('  }')
        lines.append('}')
    return write_bytes(path, ('\n'.join(lines) + '\n').encode('utf-8'))


def _quote(text: str) -> str:
    """A protobuf text-format string literal (C escapes, UTF-8 as octal)."""
    out = []
    for byte in str(text).encode('utf-8'):
        char = chr(byte)
        if char in '"\\':
            out.append('\\' + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f'\\{byte:03o}')
    return '"' + ''.join(out) + '"'
