"""Compare runs on the same samples; see ``--help``.

Two runs (e.g. pretrained vs fine-tuned): ``tsneviz.compare.compare_runs``.
Three or more, or two with ``--checkpoints`` (runs made from checkpoints
along one training run): ``tsneviz.compare.compare_checkpoints``.
"""
import argparse

from tsneviz.cli import run


def parse_args(argv=None):
    from tsneviz.compare import ALIGN_MODES
    from tsneviz.compare.checkpoints import START_LAYOUTS
    parser = argparse.ArgumentParser(
        description='Compare tsneviz runs on the same samples. Two runs '
        '(e.g. a pretrained and a fine-tuned checkpoint): side-by-side plot '
        'and a metrics table with the better run marked per row. Three or '
        'more (runs made from checkpoints along one training run, in '
        'training order): maps from one start layout as an animation and a '
        'slider page, per-sample movement, changed neighbourhoods and '
        'dataset cartography.')
    parser.add_argument('runs', metavar='RUN', nargs='+',
                        help='run directories; with two, the first is the '
                        'reference (A) and the second is compared with it '
                        '(B)')
    parser.add_argument('--checkpoints', action='store_true',
                        help='follow two runs as checkpoints of one '
                        'training run (the default from three runs on)')
    parser.add_argument(
        '--align', choices=ALIGN_MODES, default=None,
        help="how B's map is brought into A's frame: procrustes (rotate, "
        "scale, shift), init (t-SNE again on B's features starting from "
        "A's map) or none. Defaults to procrustes. Two runs only.")
    parser.add_argument('--out', help='output directory. Defaults to '
                        '<work dir of A>/compare_<A>_vs_<B>/ for two runs, '
                        '<work dir of the first>/checkpoints_<first>_to_'
                        '<last>/ for checkpoints')
    parser.add_argument('--key-a', help="feature key of A; defaults to its "
                        'first. Two runs only.')
    parser.add_argument('--key-b', help="feature key of B; defaults to its "
                        'first. Two runs only.')
    parser.add_argument('--key', help='checkpoints: feature key of every '
                        "run; defaults to each one's first")
    parser.add_argument('--start', choices=START_LAYOUTS, default=None,
                        help="checkpoints: whose map every map starts from "
                        '(last: the trained layout). Defaults to last.')
    parser.add_argument('--k', type=int, default=None,
                        help='checkpoints: neighbours compared between the '
                        'first and last checkpoint. Defaults to 10.')
    return parser.parse_args(argv)


def follows_checkpoints(args) -> bool:
    """Whether ``args`` ask for checkpoints; refuse flags of the other mode.

    Raises:
        UserError: Fewer than two runs, or a flag of the other mode.
    """
    from tsneviz.errors import UserError
    if len(args.runs) < 2:
        raise UserError('give two run directories or more (one per '
                        'checkpoint, in training order)')
    checkpoints = args.checkpoints or len(args.runs) > 2
    wrong = [flag for flag, value, pair_only in (
        ('--align', args.align, True), ('--key-a', args.key_a, True),
        ('--key-b', args.key_b, True), ('--key', args.key, False),
        ('--start', args.start, False), ('--k', args.k, False))
        if value is not None and pair_only == checkpoints]
    if wrong:
        other = ('comparing two runs' if checkpoints else 'following '
                 'checkpoints (three runs or more, or --checkpoints)')
        raise UserError(f'{", ".join(wrong)}: only for {other}, not for '
                        f'these {len(args.runs)} runs; see --help')
    return checkpoints


def print_checkpoints(result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f'{len(result["checkpoints"])} checkpoints, '
                  f'{result["n_samples"]} samples, maps from the '
                  f'{result["start"]} run\'s map')
    for name in ('#', 'checkpoint', 'accuracy', 'mean p(true)',
                 'moved from previous'):
        table.add_column(name, justify='left' if name == 'checkpoint'
                         else 'right')
    for i, row in enumerate(result['checkpoints']):
        table.add_row(str(i + 1), row['label'],
                      _figure(row['metrics'].get('accuracy')),
                      _figure(row['mean_confidence']),
                      _figure(row['mean_moved_from_previous']))
    console = Console()
    console.print(table)
    carto = result['cartography']
    if carto is not None:
        console.print('cartography: ' + ', '.join(
            f'{n} {r}' for r, n in carto['counts'].items()),
            highlight=False)
    for note in result['notes']:
        console.print(note, highlight=False)


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
    console.print(f'alignment: {result["align"]}; disparity to A '
                  f'{_figure(al["disparity_before"])} before, '
                  f'{_figure(al["disparity_after"])} after', highlight=False)
    for note in result['notes']:
        console.print(note, highlight=False)


def _figure(value) -> str:
    """A measure for the table: 4 decimals, a dash when missing."""
    return '–' if value is None else f'{value:.4f}'


def main(argv=None):
    args = parse_args(argv)
    if follows_checkpoints(args):
        from tsneviz.compare import compare_checkpoints
        result = compare_checkpoints(
            args.runs, out_dir=args.out, key=args.key,
            start=args.start or 'last',
            k=10 if args.k is None else args.k)
        print_checkpoints(result)
        for name in ('gif', 'html', 'csv', 'cartography', 'md', 'json'):
            if name in result['files']:
                print(result['files'][name])
        return
    from tsneviz.compare import compare_runs
    result = compare_runs(*args.runs, out_dir=args.out, key_a=args.key_a,
                          key_b=args.key_b, align=args.align or 'procrustes')
    print_table(result)
    for name in ('png', 'md', 'json'):
        print(result['files'][name])


if __name__ == '__main__':
    run(main)
