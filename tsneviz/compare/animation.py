"""An animated GIF of maps across checkpoints: one frame per checkpoint.

Each frame is drawn by matplotlib (Agg) in the same axis limits and class
colours, and Pillow writes the frames as one looping GIF: no ffmpeg.
"""
from typing import Sequence

import numpy as np

from tsneviz.rundir import atomic_write

#: How long each frame shows, in milliseconds.
FRAME_MS = 1200


def class_colors(labels: np.ndarray) -> np.ndarray:
    """RGBA per sample, by rank among the classes present.

    The rank, as ``tsneviz.visualization.plot_embedding`` colours, so a
    class has the same colour here as in each run's own plot.
    """
    from tsneviz.visualization import class_palette

    classes = np.unique(labels)
    colors = np.array(class_palette(len(classes)))
    return colors[np.searchsorted(classes, labels)]


def shared_limits(coords: np.ndarray) -> np.ndarray:
    """``[[xmin, xmax], [ymin, ymax]]`` over every frame, padded 3%."""
    lo = coords.reshape(-1, coords.shape[-1]).min(axis=0)
    hi = coords.reshape(-1, coords.shape[-1]).max(axis=0)
    pad = 0.03 * float((hi - lo).max())
    return np.stack([lo - pad, hi + pad], axis=1)


def write_animation(coords: np.ndarray, labels: np.ndarray,
                    titles: Sequence[str], out_path: str,
                    size_in: float = 4.8, dpi: int = 80) -> int:
    """Write the maps as an animated GIF.

    Args:
        coords (np.ndarray): (T, N, 2) maps in one frame.
        labels (np.ndarray): (N,) class ids, for the colours.
        titles (Sequence[str]): One title per frame.
        out_path (str): The GIF to write (atomically).
        size_in (float): Side of a frame in inches. Defaults to 4.8.
        dpi (int): Defaults to 80 (a 384-pixel square).

    Returns:
        int: The number of frames written.

    Examples:
        >>> maps = np.random.default_rng(0).normal(size=(3, 40, 2))
        >>> write_animation(maps, np.arange(40) % 4, ['a', 'b', 'c'],
        ...                 'maps.gif')
        3
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    colors = class_colors(labels)
    limits = shared_limits(coords)
    # a fixed shuffled drawing order: no class always on top
    order = np.random.default_rng(0).permutation(coords.shape[1])
    size = float(np.clip(200.0 / np.sqrt(max(coords.shape[1], 1)), 1, 30))
    frames = []
    for frame, title in zip(coords, titles):
        fig = Figure(figsize=(size_in, size_in), dpi=dpi)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((0.02, 0.02, 0.96, 0.88))
        ax.scatter(*frame[order].T, s=size, c=colors[order], linewidths=0)
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
        ax.set_aspect('equal')
        ax.set_xticks([])
        ax.set_yticks([])
        fig.suptitle(title, fontsize='small')
        canvas.draw()
        rgb = np.asarray(canvas.buffer_rgba())[..., :3]
        # 64 colours: ten classes, their anti-aliased edges and the text
        frames.append(Image.fromarray(rgb).convert(
            'P', palette=Image.Palette.ADAPTIVE, colors=64))
    atomic_write(out_path, lambda f: frames[0].save(
        f, format='GIF', save_all=True, append_images=frames[1:],
        duration=FRAME_MS, loop=0, disposal=1))
    return len(frames)
