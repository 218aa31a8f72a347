"""Find the suspected label errors of a tsneviz run and list them to review.

Adds ``label_quality`` and ``label_issue`` columns to ``samples.csv`` and a
``label_issues`` section to ``run.json``, then writes the suspects, lowest
quality first, as ``OUT`` (an mmpretrain annotation file: ``relative/path
label`` lines with the given labels, relative to the dataset's
``data_prefix``) and ``OUT`` with ``.csv`` (index, img_path, gt_class,
pred_class, label_quality, vote_class). The work itself is
``tsneviz.analysis.label_issues``.

Examples::

    python tools/label_issues.py RUN_DIR
    python tools/label_issues.py RUN_DIR --out review.txt --method knn
"""
import argparse

from tsneviz.cli import quiet_library_warnings, run

quiet_library_warnings()


def parse_args(argv=None):
    from tsneviz.analysis.label_issues import DEFAULT_K, METHODS

    parser = argparse.ArgumentParser(
        description='Find the samples of a tsneviz run whose given label '
        'looks wrong, and write them to review.')
    parser.add_argument('run_dir', help='run directory (holds run.json)')
    parser.add_argument('--out', help='annotation file of the suspects; the '
                        'CSV goes next to it. Defaults to '
                        'RUN_DIR/label_issues.txt')
    parser.add_argument('--method', choices=METHODS, default='auto',
                        help='cleanlab (the classification head), knn (the '
                        'feature-space vote) or auto (cleanlab where the '
                        "head's classes match the dataset's). Defaults to "
                        'auto')
    parser.add_argument('--k', type=int, default=DEFAULT_K,
                        help=f'neighbours that vote (knn). Defaults to '
                        f'{DEFAULT_K}')
    parser.add_argument('--key', help="feature key, e.g. feat_3. Defaults to "
                        "the run's first")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.analysis.label_issues import find_label_issues, write_review
    from tsneviz.rundir import recorded_step

    with recorded_step(args.run_dir, 'label_issues'):
        found = find_label_issues(args.run_dir, method=args.method, k=args.k,
                                  key=args.key)
    csv_path, ann_path, n = write_review(args.run_dir, args.out)
    k = f', k {found["k"]}' if found['k'] else ''
    print(f'{n} suspected label errors of {found["n_samples"]} samples '
          f'({found["method"]}{k})')
    print(csv_path)
    print(ann_path)


if __name__ == '__main__':
    run(main)
