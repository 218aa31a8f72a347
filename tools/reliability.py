"""Measure where the map of a tsneviz run can be trusted.

Adds a ``map_reliability`` column to ``samples.csv`` (per sample, the share
of its ``k`` nearest neighbours in feature space that are also its ``k``
nearest on the map), ``continuity`` and ``distance_spearman`` next to
``trustworthiness`` in ``run.json``, a ``reliability`` section with the
least reliable regions, and ``reliability_<key>.png``. The feature-space
neighbours are the run's shared neighbour graph. The work itself is
``tsneviz.analysis.reliability``.

Examples::

    python tools/reliability.py RUN_DIR
    python tools/reliability.py RUN_DIR --k 15 --pairs 200000
"""
import argparse
import os.path as osp

from tsneviz.cli import quiet_library_warnings, run

quiet_library_warnings()


def parse_args(argv=None):
    from tsneviz.analysis.reliability import DEFAULT_K
    from tsneviz.metrics import SPEARMAN_PAIRS

    parser = argparse.ArgumentParser(
        description='Measure where the map of a tsneviz run keeps the '
        'feature-space neighbourhoods of its samples.')
    parser.add_argument('run_dir', help='run directory (holds run.json)')
    parser.add_argument('--k', type=int, default=DEFAULT_K,
                        help='neighbours compared per sample, at most those '
                        f'the run\'s graph keeps. Defaults to {DEFAULT_K}')
    parser.add_argument('--pairs', type=int, default=SPEARMAN_PAIRS,
                        help='random pairs of the distance correlation. '
                        f'Defaults to {SPEARMAN_PAIRS}')
    parser.add_argument('--key', help="feature key, e.g. feat_3. Defaults to "
                        "the run's first")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.analysis.reliability import measure_reliability
    from tsneviz.rundir import recorded_step

    with recorded_step(args.run_dir, 'reliability'):
        found = measure_reliability(args.run_dir, k=args.k, key=args.key,
                                    n_pairs=args.pairs)
    def fmt(value):
        return '–' if value is None else f'{value:.3f}'

    print(f'{found["key"]}: mean map reliability {found["mean"]:.3f} '
          f'(chance {found["chance"]:.3f}, k {found["k"]}); continuity '
          f'{fmt(found.get("continuity"))}; distance Spearman '
          f'{fmt(found["distance_spearman"])} on '
          f'{found["distance_spearman_pairs"]} pairs')
    for region in found['regions'][:5]:
        print(f'  {region["rank"]}. {region["region"]}: mean '
              f'{region["mean_reliability"]:.3f}, {region["size"]} samples, '
              f'mostly {region["dominant_class"]}')
    print(osp.join(args.run_dir, found['figure']))


if __name__ == '__main__':
    run(main)
