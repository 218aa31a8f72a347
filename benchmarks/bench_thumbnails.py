"""Thumbnails at scale: one PNG per image against packed sprite sheets.

Writes ``max(--sizes)`` distinct digits-like images once into a temporary
folder (scikit-learn's 8 x 8 digits, enlarged to 28 x 28 grey PNGs with a
little noise so no two files are alike), then for each of ``--sizes``
(default 10k and 100k distinct images) writes the thumbnails of the first
N of them both ways into a fresh run folder:

* ``old``: one ``thumbs/<t>.png`` per image, as the explorer wrote them
  before (:func:`write_files_per_image`, the previous code as it was);
* ``new``: :func:`tsneviz.rundir.thumbs.pack_thumbnails` (64 px cells in
  2048 px sheets and one index; decoding in a process pool from 2000
  images);

and reports seconds, files and bytes (apparent, and allocated on disk,
where every small file takes at least a block) of each, their ratios, the
seconds of a second ``new`` call on the same paths (the pack is reused)
and the 1-minute load average before each size.

Usage (as run for benchmarks/README.md)::

    python benchmarks/bench_thumbnails.py

Smoke version::

    python benchmarks/bench_thumbnails.py --sizes 500
"""
import argparse
import os
import os.path as osp
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_images(folder: str, n: int, seed: int = 0) -> list:
    """``n`` distinct 28 x 28 grey digit PNGs in ``folder``; their paths."""
    from PIL import Image
    from sklearn.datasets import load_digits

    # the 1797 digits enlarged once; each file adds its own noise
    bases = np.stack([np.asarray(Image.fromarray(
        (d * (255 / 16)).astype(np.uint8), 'L').resize(
            (28, 28), Image.Resampling.BILINEAR), np.float32)
        for d in load_digits().images])
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        sub = osp.join(folder, str(i // 10000))
        if i % 10000 == 0:
            os.makedirs(sub, exist_ok=True)
        noisy = bases[i % len(bases)] + rng.normal(0, 12, (28, 28))
        path = osp.join(sub, f'{i}.png')
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), 'L').save(
            path, compress_level=1)
        paths.append(path)
    return paths


def write_files_per_image(run_dir: str, paths, size: int = 64) -> None:
    """The explorer's thumbnails as written before: ``thumbs/<t>.png``."""
    from PIL import Image

    from tsneviz.data.display import to_display
    from tsneviz.rundir import atomic_write

    first = {}  # the row of the first sample of each image
    for i, path in enumerate(paths):
        first.setdefault(path, i)
    folder = osp.join(run_dir, 'thumbs')
    os.makedirs(folder, exist_ok=True)
    for t in sorted(first.values()):
        out = osp.join(folder, f'{t}.png')
        try:
            with Image.open(paths[t]) as image:
                image.draft('RGB', (size, size))
                image = to_display(image, grey=True)
                image.thumbnail((size, size), Image.Resampling.LANCZOS)
                atomic_write(out, lambda f, im=image: im.save(
                    f, format='PNG', optimize=True))
        except (OSError, ValueError):
            pass


def folder_usage(folder: str):
    """Files, apparent bytes and allocated bytes under ``folder``."""
    files = apparent = allocated = 0
    for entry in os.scandir(folder):
        st = entry.stat()
        files += 1
        apparent += st.st_size
        allocated += st.st_blocks * 512
    return files, apparent, allocated


def measure(paths, work: str, n: int) -> dict:
    from tsneviz.rundir.thumbs import pack_thumbnails

    row = dict(n=n, load=os.getloadavg()[0])
    for name in ('old', 'new'):
        run_dir = osp.join(work, f'{name}_{n}')
        os.makedirs(run_dir)
        start = time.perf_counter()
        if name == 'old':
            write_files_per_image(run_dir, paths[:n])
        else:
            pack_thumbnails(run_dir, paths[:n])
        row[f'{name}_s'] = time.perf_counter() - start
        (row[f'{name}_files'], row[f'{name}_bytes'],
         row[f'{name}_disk']) = folder_usage(osp.join(run_dir, 'thumbs'))
        if name == 'new':
            start = time.perf_counter()
            pack_thumbnails(run_dir, paths[:n])
            row['reuse_s'] = time.perf_counter() - start
        shutil.rmtree(run_dir)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[10_000, 100_000],
                        help='numbers of distinct images')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='bench_thumbs_') as work:
        start = time.perf_counter()
        paths = write_images(osp.join(work, 'images'), max(args.sizes))
        print(f'{len(paths)} images written in '
              f'{time.perf_counter() - start:.1f} s; {os.cpu_count()} CPUs',
              flush=True)
        print('| distinct images | old s | new s | speed-up | old files | '
              'new files | old MB (on disk) | new MB (on disk) | bytes on '
              'disk, old / new | new, reused s | load |')
        print('|---|---|---|---|---|---|---|---|---|---|---|')
        for n in args.sizes:
            r = measure(paths, work, n)
            print(f'| {n:,} | {r["old_s"]:.1f} | {r["new_s"]:.1f} | '
                  f'**{r["old_s"] / r["new_s"]:.1f}x** | '
                  f'{r["old_files"]:,} | {r["new_files"]:,} | '
                  f'{r["old_bytes"] / 1e6:.1f} ({r["old_disk"] / 1e6:.1f}) '
                  f'| {r["new_bytes"] / 1e6:.1f} ({r["new_disk"] / 1e6:.1f})'
                  f' | {r["old_disk"] / r["new_disk"]:.1f}x | '
                  f'{r["reuse_s"]:.2f} | {r["load"]:.1f} |', flush=True)


if __name__ == '__main__':
    main()
