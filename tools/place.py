"""Place new images (or feature rows) on a run's map without moving it.

The images go through the run's model, stage and pooling; their
coordinates come from the run's own layout (openTSNE's transform for a
t-SNE map, the refitted projection for a PCA map). Writes
``RUN_DIR/placed/<name>.csv`` (path, label, coordinates, the nearest map
samples in feature space, the model's prediction and score) and
``placed/<name>.png``, lists the layer under ``placed`` in ``run.json``,
and rewrites the run's explorer and report, where it has them, so that
they show the layer. The work itself is ``tsneviz.analysis.placement``.

Examples::

    python tools/place.py RUN_DIR --images data/digits/train --labels
    python tools/place.py RUN_DIR --images new/ --name batch2
    python tools/place.py RUN_DIR --features new.npy --labels new.txt
"""
import argparse
import os.path as osp

from tsneviz.cli import quiet_library_warnings, run

quiet_library_warnings()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Place new images or feature rows on a tsneviz run's "
        'map without moving it, and list their nearest map samples.')
    parser.add_argument('run_dir', help='run directory (holds run.json)')
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument('--images', nargs='+', metavar='DIR_OR_LIST',
                      help='folders of images, image files, or text files '
                      'listing image paths; passed through the run\'s '
                      'model, stage and test pipeline')
    what.add_argument('--features', metavar='X.npy',
                      help="an (M, C) .npy of features in the run's feature "
                      'space (runs made from plain features)')
    parser.add_argument('--labels', nargs='?', const='folder',
                        metavar='FILE',
                        help='labels of the new samples: a file of "<path> '
                        '<label>" lines or of one label per line (class '
                        'names or ids); without FILE, from the folders '
                        '(<DIR>/<class>/<image>, CustomDataset layout)')
    parser.add_argument('--name', help='the layer\'s name, placed/<name>.csv'
                        '. Defaults to the images folder\'s name, or '
                        '"features"')
    parser.add_argument('--key', help="feature key, e.g. feat_3. Defaults to "
                        "the run's first")
    parser.add_argument('--k', type=int, default=10,
                        help='nearest map samples listed per sample. '
                        'Defaults to 10')
    parser.add_argument('--device', default='cpu',
                        help='torch device for --images. Defaults to cpu')
    parser.add_argument('--batch-size', type=int, default=64,
                        help='images per forward pass. Defaults to 64')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help="unpickle the run's checkpoint fully (a run "
                        'made with --trust-checkpoint). This can run code '
                        'from the file: only for checkpoints you trust; the '
                        "run's own record of it is not enough")
    return parser.parse_args(argv)


def refresh_views(run_dir: str, key=None) -> None:
    """Rewrite the explorer and report the run has, to show the layer."""
    from tsneviz.rundir import EXPLORER_PAGE, REPORT_MD, Run

    found = Run(run_dir)
    if found.has(EXPLORER_PAGE):
        from tsneviz.explorer import write_explorer
        explorer = found.manifest.get('explorer') or {}
        write_explorer(run_dir, key=explorer.get('key', key),
                       k=explorer.get('k', 9),
                       thumb_size=explorer.get('thumb_size', 64))
    if found.has(REPORT_MD):
        from tsneviz.apis import write_report
        write_report(run_dir, (found.manifest.get('report') or {}).get(
            'key', key))


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.analysis.placement import layer_file
    from tsneviz.apis import place_features, place_images

    if args.labels == 'folder' and args.features:
        from tsneviz.errors import UserError
        raise UserError('--labels without a file reads the labels from '
                        'image folders; with --features pass a labels file')
    if args.images:
        placed = place_images(args.run_dir, args.images, labels=args.labels,
                              name=args.name, key=args.key, k=args.k,
                              device=args.device,
                              batch_size=args.batch_size,
                              trust_checkpoint=args.trust_checkpoint)
    else:
        placed = place_features(args.run_dir, args.features,
                                labels=args.labels, name=args.name,
                                key=args.key, k=args.k)
    refresh_views(args.run_dir, placed.key)
    line = f'{len(placed)} placed on the map ({placed.how})'
    agreement = placed.agreement()
    if agreement is not None:
        line += (f'; {agreement:.1%} land among map samples of their own '
                 'class (10-NN majority)')
    print(line)
    print(osp.join(args.run_dir, layer_file(placed.name)))


if __name__ == '__main__':
    run(main)
