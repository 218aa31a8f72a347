"""Export a run directory for another tool; see ``--help``.

Formats: ``projector`` (TensorBoard Embedding Projector log directory),
``bulk`` (CSV for ``python -m bulk image``), ``parquet`` and ``csv`` (the
per-sample table). The work itself is ``tsneviz.exporters.export_run``;
the paths written are printed, one a line.
"""
import argparse

from tsneviz.cli import quiet_library_warnings, run

quiet_library_warnings()



def parse_args(argv=None):
    # The formats, and the options each one takes, are the exporters
    # registered in tsneviz.registry.EXPORTERS: a new format needs no edit
    # here.
    from tsneviz.exporters import formats
    from tsneviz.exporters.bulk import COLORS

    parser = argparse.ArgumentParser(
        description='Export a tsneviz run directory: TensorBoard projector, '
        'Bulk CSV, Parquet or CSV table.',
        epilog='View a projector export with: tensorboard --logdir '
        'RUN_DIR/projector; a Bulk export with: python -m bulk image '
        'RUN_DIR/bulk_<key>.csv')
    parser.add_argument('run_dir', metavar='RUN_DIR',
                        help='a run directory (holding run.json)')
    # Not argparse choices: an unknown format is checked by export_run,
    # whose one-line error lists the registered formats.
    parser.add_argument('--format', required=True,
                        metavar='{' + ','.join(formats()) + '}',
                        help='what to write')
    parser.add_argument(
        '--out', help='output file (bulk, parquet, csv) or folder '
        '(projector). Defaults to a path inside RUN_DIR: projector/, '
        'bulk_<key>.csv, samples.parquet, samples_export.csv')
    parser.add_argument(
        '--key', help='feature key, e.g. feat_3. Defaults to every key '
        '(projector, parquet, csv) or the first one (bulk)')
    parser.add_argument(
        '--color', metavar='{' + ','.join(COLORS) + '}',
        help='bulk only: what the points are coloured by. Defaults to label')
    parser.add_argument(
        '--thumbnail-size', type=int,
        help='projector only: sprite thumbnail side in pixels. Defaults to '
        '64, or less so that every thumbnail fits one 8192x8192 sprite')
    parser.add_argument(
        '--tensor-format', choices=['auto', 'tsv', 'bytes'],
        help='projector only: tensor files as TSV or raw float32. '
        'Defaults to auto (TSV up to 2 million values)')
    parser.add_argument('--no-sprite', action='store_true',
                        help='projector only: write no thumbnail sprite')
    parser.add_argument('--no-coords', action='store_true',
                        help='projector only: leave out the t-SNE layout '
                        'tensor tsne_<key>')
    parser.add_argument('--features', action='store_true',
                        help='parquet, csv only: add the feature vectors')
    return parser.parse_args(argv)


def options_of(args) -> dict:
    """The exporter options the user set, checked against the format."""
    from tsneviz.errors import UserError
    from tsneviz.exporters import formats
    from tsneviz.exporters.base import format_options

    given = {
        '--color': ('color', args.color),
        '--thumbnail-size': ('thumbnail_size', args.thumbnail_size),
        '--tensor-format': ('tensor_format', args.tensor_format),
        '--no-sprite': ('sprite', False if args.no_sprite else None),
        '--no-coords': ('coords', False if args.no_coords else None),
        '--features': ('features', True if args.features else None),
    }
    known = formats()
    options = {}
    for flag, (name, value) in given.items():
        if value is None:
            continue
        fmts = [f for f in known if name in format_options(f)]
        if args.format in known and args.format not in fmts:
            raise UserError(f'{flag} applies to --format '
                            f'{" or ".join(fmts)} only, not {args.format}')
        options[name] = value
    return options


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.exporters import export_run
    from tsneviz.rundir import Run

    # A damaged run is refused before an exporter creates its folder, so a
    # failed export leaves nothing half-written in the run directory.
    Run(args.run_dir).check_arrays()
    paths = export_run(args.run_dir, args.format, out=args.out, key=args.key,
                       **options_of(args))
    for path in paths:
        print(path)


if __name__ == '__main__':
    run(main)
