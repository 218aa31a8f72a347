"""Compare two runs on the same samples; see ``--help``.

The work itself is ``tsneviz.compare.compare_runs``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from tsneviz.cli import run  # noqa: E402


def parse_args(argv=None):
    from tsneviz.compare import ALIGN_MODES
    parser = argparse.ArgumentParser(
        description='Compare two tsneviz runs on the same samples (e.g. a '
        'pretrained and a fine-tuned checkpoint): side-by-side plot and a '
        'metrics table with the better run marked per row.')
    parser.add_argument('run_a', metavar='RUN_A',
                        help='reference run directory')
    parser.add_argument('run_b', metavar='RUN_B',
                        help='run directory to compare with it')
    parser.add_argument(
        '--align', choices=ALIGN_MODES, default='procrustes',
        help="how B's map is brought into A's frame: procrustes (rotate, "
        "scale, shift), init (t-SNE again on B's features starting from "
        "A's map) or none. Defaults to procrustes.")
    parser.add_argument('--out', help='output directory. Defaults to '
                        '<work dir of A>/compare_<A>_vs_<B>/')
    parser.add_argument('--key-a', help="feature key of A; defaults to its "
                        'first')
    parser.add_argument('--key-b', help="feature key of B; defaults to its "
                        'first')
    return parser.parse_args(argv)


def print_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    a, b = result['run_a'], result['run_b']
    table = Table(title=f'A: {a["label"]} ({a["name"]})  vs  '
                  f'B: {b["label"]} ({b["name"]})')
    for name in ('metric', 'better is', 'A', 'B', 'better'):
        table.add_column(name, justify='left' if name == 'metric'
                         else 'right')
    for row in result['metrics']:
        cells = ['–' if v is None else f'{v:.4f}' for v in (row['a'],
                                                             row['b'])]
        if row['better'] in ('A', 'B'):
            i = 'AB'.index(row['better'])
            cells[i] = f'[bold green]{cells[i]}[/]'
        table.add_row(row['label'], row['direction'], *cells,
                      row['better'] or '–')
    console = Console()
    console.print(table)
    al = result['alignment']
    fmt = lambda v: '–' if v is None else f'{v:.4f}'  # noqa: E731
    console.print(f'alignment: {result["align"]}; disparity to A '
                  f'{fmt(al["disparity_before"])} before, '
                  f'{fmt(al["disparity_after"])} after', highlight=False)
    for note in result['notes']:
        console.print(note, highlight=False)


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.compare import compare_runs
    result = compare_runs(args.run_a, args.run_b, out_dir=args.out,
                          key_a=args.key_a, key_b=args.key_b,
                          align=args.align)
    print_table(result)
    for name in ('png', 'md', 'json'):
        print(result['files'][name])


if __name__ == '__main__':
    run(main)
