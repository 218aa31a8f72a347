"""The explorer's thumbnails: ``thumbs/<t>.png`` in a run directory.

``t`` is the position (row of ``samples.csv``) of the first sample showing
an image, so a run of distinct images has ``thumbs/<position>.png`` and a
repeated image is written once.
"""
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np

from tsneviz.errors import UserError
from tsneviz.rundir import THUMBS, atomic_write, read_manifest

__all__ = ['THUMBS', 'thumb_ids', 'write_thumbnails']



def thumb_ids(paths: Sequence[str]) -> np.ndarray:
    """Per sample, the position of the first sample with the same image.

    Examples:
        >>> thumb_ids(['a.png', 'b.png', 'a.png'])
        array([0, 1, 0], dtype=int32)
    """
    first: Dict[str, int] = {}
    return np.array([first.setdefault(p, i) for i, p in enumerate(paths)],
                    dtype=np.int32)


def write_thumbnails(run_dir: str, paths: Sequence[str], size: int = 64,
                     show_progress: bool = False) -> np.ndarray:
    """Write ``thumbs/<t>.png`` for each distinct image of a run.

    An image that is already there at the same ``size`` (recorded in
    ``run.json``'s ``explorer`` section) is not written again. Images are
    shrunk to fit ``size`` x ``size`` and never enlarged: the page scales
    small ones up with pixelated rendering, which keeps the files tiny.

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
    from PIL import Image

    from tsneviz.data.display import to_display
    from tsneviz.progress import progress_bar

    if int(size) != size or size < 8:
        raise UserError(f'thumbnail size must be an integer >= 8, got {size}')
    ids = thumb_ids(paths)
    folder = osp.join(run_dir, THUMBS)
    os.makedirs(folder, exist_ok=True)
    try:
        previous = read_manifest(run_dir).get('explorer', {})
    except UserError:
        previous = {}
    reuse = previous.get('thumb_size') == size
    unique = np.flatnonzero(ids == np.arange(len(ids)))
    failed = set()
    with progress_bar('Thumbnails', len(unique), show_progress) as bar:
        for t in unique:
            out = osp.join(folder, f'{t}.png')
            if reuse and osp.isfile(out):
                bar(advance=1)
                continue
            try:
                with Image.open(paths[t]) as image:
                    image.draft('RGB', (size, size))  # fast JPEG shrink
                    image = to_display(image, grey=True)  # 16-bit scaled
                    image.thumbnail((size, size), Image.Resampling.LANCZOS)
                    atomic_write(out, lambda f, im=image: im.save(
                        f, format='PNG', optimize=True))
            except (OSError, ValueError):
                # a missing or broken image should not cost the whole page
                failed.add(int(t))
            bar(advance=1)
    if failed:
        ids = np.where(np.isin(ids, list(failed)), -1, ids).astype(np.int32)
    return ids
