"""Export a selection of a run's samples under a label.

Thin shell over :func:`tsneviz.exporters.selection.export_selection`.
``--indices`` is a CSV with an ``index`` column (as the explorer's download
writes it) or a text file with one dataset index per line. ``copy`` and
``link`` put the images into ``OUT/LABEL/``; ``append`` adds
``relative/path class_id`` lines to the annotation file ``OUT``.

Examples::

    python tools/export_selection.py RUN_DIR --indices sel.csv \\
        --label hard_3 --out exports
    python tools/export_selection.py RUN_DIR --indices sel.txt --label 3 \\
        --out data/digits/meta/train.txt --mode append
"""
import argparse

from tsneviz.cli import quiet_library_warnings, run

quiet_library_warnings()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Copy, link or list the images of a selection of a '
        'tsneviz run under a label.')
    parser.add_argument('run_dir', help='run directory (holds run.json)')
    parser.add_argument('--indices', required=True,
                        help='CSV with an "index" column, or one dataset '
                        'index per line')
    parser.add_argument('--label', required=True,
                        help='folder name (copy, link) or a class of the '
                        'run (append)')
    parser.add_argument('--out', required=True,
                        help='folder (copy, link: images go to OUT/LABEL) '
                        'or annotation file (append)')
    parser.add_argument('--mode', choices=['copy', 'link', 'append'],
                        default='copy', help='Defaults to copy')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.exporters.selection import export_selection

    result = export_selection(args.run_dir, args.indices, args.label,
                              args.out, mode=args.mode)
    what = 'lines' if args.mode == 'append' else 'images'
    print(f'{result["added"]} {what} added, {result["skipped"]} already '
          f'there ({args.mode})')
    print(result['out'])


if __name__ == '__main__':
    run(main)
