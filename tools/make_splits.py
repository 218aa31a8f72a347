"""Write a stratified train/val split of a run as mmpretrain annotations.

Thin shell over :func:`tsneviz.exporters.splits.make_splits`: every cluster
(``--by cluster``, from ``tools/cluster.py``) or class gets its share of val,
and near-duplicate images never straddle train and val. Writes
``train.txt``, ``val.txt`` (``relative/path label``, relative to the run's
``data_prefix``) and ``duplicates.csv``.

Examples::

    python tools/make_splits.py work_dirs/digits/tsne_20261123_144017 \\
        --val-ratio 0.2 --by class
"""
import argparse

from tsneviz.cli import number_or_auto, quiet_library_warnings, run

quiet_library_warnings()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Split the samples of a tsneviz run into train and val '
        'annotation files: stratified by cluster or class, near-duplicates '
        'kept on one side.')
    parser.add_argument('run_dir', help='run directory (holds run.json)')
    parser.add_argument('--val-ratio', type=float, required=True,
                        help='share of samples in val, in (0, 1)')
    parser.add_argument('--by', choices=['cluster', 'class'],
                        default='cluster',
                        help='strata: the cluster column of samples.csv '
                        '(run tools/cluster.py first) or the ground-truth '
                        'class. Defaults to cluster')
    parser.add_argument(
        '--dup-threshold', type=number_or_auto, default='auto',
        help='cosine distance of features at or below which two samples '
        "are near-duplicates; 'auto' (default) is 0.1 x the median distance "
        'of a sample to its nearest other sample; 0 only identical features')
    parser.add_argument('--key', help="feature key, e.g. feat_3. Defaults "
                        "to the run's first")
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the assignment. Defaults to 0')
    parser.add_argument('--out', help='output folder. Defaults to '
                        'RUN_DIR/splits')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.exporters.splits import make_splits

    result = make_splits(args.run_dir, args.val_ratio, by=args.by,
                         dup_threshold=args.dup_threshold, seed=args.seed,
                         out_dir=args.out, key=args.key, show_progress=True)
    total = result['n_train'] + result['n_val']
    print(f'train {result["n_train"]}, val {result["n_val"]} '
          f'({result["n_val"] / total:.3f} of {total}), stratified by '
          f'{args.by} over {len(result["strata"])} strata')
    print(f'{result["n_duplicate_pairs"]} near-duplicate pairs in '
          f'{result["n_duplicate_groups"]} groups kept on one side (cosine '
          f'distance <= {result["dup_threshold"]:.3g}); see '
          f'{result["duplicates"]}')
    print(result['train'])
    print(result['val'])


if __name__ == '__main__':
    run(main)
