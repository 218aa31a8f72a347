"""Write scikit-learn's digits as a PNG image-folder data set.

Usage::

    python tools/make_digits.py --out data/digits --size 32

Thin wrapper around :func:`tsneviz.demo.write_digits`; prints the folder.
"""

import argparse
import sys

from tsneviz.demo import write_digits
from tsneviz.errors import UserError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Write scikit-learn's digits as PNG images in "
        'mmpretrain CustomDataset layout (<out>/{train,val}/<class>/*.png).')
    parser.add_argument('--out', default='data/digits',
                        help='output folder (default: %(default)s)')
    parser.add_argument('--size', type=int, default=32,
                        help='side of the square images in pixels '
                        '(default: %(default)s)')
    parser.add_argument('--val-ratio', type=float, default=0.3,
                        help='fraction of each class put into val '
                        '(default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the split (default: %(default)s)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        write_digits(args.out, size=args.size, val_ratio=args.val_ratio,
                     seed=args.seed)
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        return e.exit_code
    print(args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
