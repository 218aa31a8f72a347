"""The explorer's thumbnails: the run's packed sheets in ``thumbs/``.

The format (sheets of fixed-size cells and an index) belongs to
:mod:`tsneviz.rundir.thumbs`, which the server and the projector export
read too; the page draws a thumbnail as the background of an element,
positioned on its cell (``static/explorer.js``).
"""
from typing import List, Sequence

import numpy as np

from tsneviz.rundir import THUMBS
from tsneviz.rundir.thumbs import pack_thumbnails, read_packed, thumb_ids

__all__ = ['THUMBS', 'thumb_ids', 'write_thumbnails', 'thumbnail_files']


def write_thumbnails(run_dir: str, paths: Sequence[str], size: int = 64,
                     show_progress: bool = False) -> np.ndarray:
    """Pack a thumbnail of each distinct image of a run into ``thumbs/``.

    A pack already there for the same paths and ``size`` is kept. Images
    are shrunk to fit ``size`` x ``size`` and never enlarged: the page
    scales small ones up with pixelated rendering.

    Args:
        run_dir (str): The run directory.
        paths (Sequence[str]): Image path of every sample, as in
            ``samples.csv``.
        size (int): Longest side in pixels. Defaults to 64.
        show_progress (bool): Draw a progress bar. Defaults to False.

    Returns:
        np.ndarray: int32 (N,) thumbnail id per sample, -1 where the image
        could not be read.

    Examples:
        >>> ids = write_thumbnails(run_dir, Run(run_dir).image_paths)
        >>> ids[:3]
        array([0, 1, 2], dtype=int32)
    """
    return pack_thumbnails(run_dir, paths, size,
                           show_progress=show_progress).ids


def thumbnail_files(run_dir: str) -> List[str]:
    """The pack's files, relative to the run directory, for ``run.json``.

    Examples:
        >>> thumbnail_files(run_dir)
        ['thumbs/sheet_0.png', 'thumbs/index.js', 'thumbs/index.json']
    """
    packed = read_packed(run_dir)
    return [] if packed is None else packed.files()
