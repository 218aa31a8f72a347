"""Write the interactive explorer of a tsneviz run and print its URL.

Thin shell over :func:`tsneviz.explorer.write_explorer`: ``index.html`` in
the run directory (with ``thumbs/`` and ``explorer/`` beside it) opens from
``file://`` with no network.

Examples::

    python tools/explore.py work_dirs/digits/tsne_20261123_144017
    python tools/explore.py RUN_DIR --key feat_2 --k 15
"""
import argparse
import os.path as osp
import pathlib

from tsneviz.cli import run


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write index.html, the interactive explorer of a tsneviz '
        'run (hover thumbnails, nearest neighbours, lasso selections and '
        'their downloads), and print its file:// URL.')
    parser.add_argument('run_dir', help='run directory (holds run.json)')
    parser.add_argument('--key', help="feature key, e.g. feat_3. Defaults "
                        "to the run's first")
    parser.add_argument('--k', type=int, default=9,
                        help='nearest neighbours shown for a clicked sample. '
                        'Defaults to 9')
    parser.add_argument('--thumb-size', type=int, default=64,
                        help='longest side of a thumbnail in pixels. '
                        'Defaults to 64')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.explorer import write_explorer
    from tsneviz.rundir import recorded_step

    with recorded_step(args.run_dir, 'explorer'):
        page = write_explorer(args.run_dir, key=args.key, k=args.k,
                              thumb_size=args.thumb_size, show_progress=True)
    print(pathlib.Path(osp.abspath(page)).as_uri())


if __name__ == '__main__':
    run(main)
