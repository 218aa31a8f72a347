"""Nearest neighbours of a run sample or a new image, as an image grid.

Thin shell over :mod:`tsneviz.analysis.neighbors`: the query comes first
(framed), then its ``--k`` nearest samples of the run in feature space, each
titled with its label, the model's prediction and the distance. Prints the
path of the grid.

Examples::

    python tools/neighbors.py work_dirs/digits/tsne_20261123_144017 \\
        --index 17 --k 15
    python tools/neighbors.py RUN_DIR --image new.png --out new_nn.png
"""
import argparse
import os
import os.path as osp

from tsneviz.cli import quiet_library_warnings, run

quiet_library_warnings()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Show the nearest neighbours (in feature space) of a '
        'sample of a tsneviz run, or of a new image, as an image grid.')
    parser.add_argument('run_dir', help='run directory (holds run.json)')
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument('--index', type=int,
                      help='sample position in the run (row of samples.csv, '
                      '0..N-1)')
    what.add_argument('--image', help='a new image, passed through the '
                      "run's model, stage and test pipeline")
    parser.add_argument('--k', type=int, default=9,
                        help='neighbours to show. Defaults to 9')
    parser.add_argument('--key', help="feature key, e.g. feat_3. Defaults "
                        "to the run's first")
    parser.add_argument('--metric', choices=['cosine', 'euclidean'],
                        help='distance; defaults to that of the stored '
                        'neighbours (tsneviz compute_neighbors), else cosine')
    parser.add_argument('--device', default='cpu',
                        help='torch device for --image. Defaults to cpu')
    parser.add_argument('--out', help='PNG to write. Defaults to '
                        'RUN_DIR/neighbors/index_<INDEX>_k<K>.png, or '
                        'image_<name>_k<K>.png for --image')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help="unpickle the run's checkpoint fully (a run "
                        'made with --trust-checkpoint). This can run code '
                        'from the file: only for checkpoints you trust; the '
                        "run's own record of it is not enough")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.analysis.neighbors import (
        describe_sample,
        query,
        save_neighbor_grid,
    )
    from tsneviz.data.paths import run_image_paths
    from tsneviz.rundir import NEIGHBOR_GRIDS, Run, update_manifest

    run_dir = args.run_dir
    # an older run with relative paths and no recorded folder: say so now,
    # rather than draw a grid of missing tiles
    run_image_paths(Run(run_dir))
    found = query(run_dir, index=args.index, image=args.image, k=args.k,
                  key=args.key, metric=args.metric, device=args.device,
                  trust_checkpoint=args.trust_checkpoint)
    if args.index is not None:
        head = describe_sample(Run(run_dir), args.index)
        # named by what was typed: --index is a row, not the dataset index
        name = f'index_{args.index}'
    else:
        head = dict(img_path=args.image)
        name = 'image_' + osp.splitext(osp.basename(args.image))[0]
    stored = Run(run_dir).neighbors(args.key)
    metric = args.metric or (stored['metric'] if stored else 'cosine')
    out = args.out or osp.join(run_dir, NEIGHBOR_GRIDS,
                               f'{name}_k{args.k}.png')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    save_neighbor_grid(head, found, out,
                       title=f'{len(found)} nearest neighbours of '
                       f'{osp.basename(head["img_path"])} ({metric})')
    # A grid inside the run directory is one of its outputs.
    relative = osp.relpath(osp.abspath(out), osp.abspath(run_dir))
    if not relative.startswith('..'):
        update_manifest(run_dir, outputs=[relative])
    print(out)


if __name__ == '__main__':
    run(main)
