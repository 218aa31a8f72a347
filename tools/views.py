"""Draw a run's map coloured by label, prediction, errors, cluster or loss.

    python tools/views.py RUN_DIR [--views label errors loss] [--key feat_3]
        [--size-by-loss]
"""
import argparse

from tsneviz.cli import run


def main(argv=None):
    from tsneviz.rundir import recorded_step
    from tsneviz.visualization import VIEWS, render_views

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('run_dir', help='a tsneviz run directory')
    parser.add_argument('--views', nargs='+', choices=VIEWS,
                        help='default: label, plus errors with predictions')
    parser.add_argument('--key', help='feature key, default the first')
    parser.add_argument('--size-by-loss', action='store_true', default=None,
                        help='marker area follows the loss')
    args = parser.parse_args(argv)
    with recorded_step(args.run_dir, 'views'):
        paths = render_views(args.run_dir, views=args.views, key=args.key,
                             size_by_loss=args.size_by_loss)
    for path in paths:
        print(path)


if __name__ == '__main__':
    run(main)
