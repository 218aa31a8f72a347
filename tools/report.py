"""Write report.md and report.html into a run directory; see ``--help``.

The work itself is ``tsneviz.report.write_report``.
"""
import argparse

from tsneviz.cli import run


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write a one-page report of a tsneviz run: separation '
        'metrics, silhouette by class, confusion matrix, worst classes, '
        'high-loss clusters and the plots, as report.md and a '
        'self-contained report.html in the run directory.')
    parser.add_argument('run_dir', metavar='RUN_DIR',
                        help='a run directory written by tools/vis_tsne.py')
    parser.add_argument('--key', help='feature key to report, e.g. feat_3. '
                        "Defaults to the run's first key.")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.report import write_report
    from tsneviz.rundir import recorded_step
    with recorded_step(args.run_dir, 'report'):
        paths = write_report(args.run_dir, key=args.key)
    for path in paths:
        print(path)


if __name__ == '__main__':
    run(main)
