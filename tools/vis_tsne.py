"""t-SNE of an mmpretrain classifier's features; see ``--help``.

A superset of mmpretrain's ``tools/visualization/vis_tsne.py``: every one of
its arguments works here with the same name and meaning. The work itself is
``tsneviz.apis.run_vis_tsne``.
"""
import argparse
import os.path as osp
import sys

from tsneviz.cli import (
    display_problem,
    file_uri,
    quiet_library_warnings,
    run,
    tool_command,
)

quiet_library_warnings()
from tsneviz.analysis.steps import analysis_steps  # noqa: E402
from tsneviz.config import CfgOptionsAction  # noqa: E402
from tsneviz.pipeline.distributed import LAUNCHERS  # noqa: E402
from tsneviz.reduction import (  # noqa: E402
    add_layout_arguments,
    layout_fields,
    reducer_names,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='t-SNE visualization of the features of an mmpretrain '
        'model (a superset of mmpretrain\'s vis_tsne.py).')
    parser.add_argument('config', nargs='?',
                        help='tsne config file path (not with --features)')
    parser.add_argument('--checkpoint', default=None, help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--test-cfg',
        help='tsne config file path to load config of test dataloader.')
    parser.add_argument(
        '--vis-stage', metavar='{backbone,neck,pre_logits,MODULE}',
        help='The visualization stage of the model, or the name of any '
        'module, e.g. backbone.layer3 (tapped with a forward hook). '
        "Defaults to the model's extract_feat default (neck).")
    parser.add_argument(
        '--class-idx', nargs='+', type=int,
        help='The categories used to calculate t-SNE.')
    parser.add_argument(
        '--max-num-class', type=int, default=20,
        help='The first N categories to apply t-SNE algorithms. '
        'Defaults to 20.')
    parser.add_argument(
        '--max-num-samples', type=int, default=100,
        help='The maximum number of samples per category. '
        'Higher number need longer time to calculate. Defaults to 100.')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed (set a path with spaces in the config file).')
    parser.add_argument('--device', help='Device used for inference')
    parser.add_argument(
        '--legend', action='store_true', default=None,
        help='Show the legend of all categories (shown automatically up to '
        '30 classes).')
    parser.add_argument(
        '--show', action='store_true',
        help='Display the result in a graphical window.')

    # The layout flags (--perplexity, --backend, --n-neighbors, ...) are
    # the reducers' own declarations (tsneviz.reduction.layout_fields).
    add_layout_arguments(parser)

    layout = parser.add_argument_group('other layouts and analysis')
    layout.add_argument(
        '--method', choices=reducer_names(), default='tsne',
        help='Layout: ' + ', '.join(reducer_names()) + ' (default: tsne; '
        'umap needs umap-learn)')
    layout.add_argument(
        '--analysis', nargs='*', metavar='STEP', choices=analysis_steps(),
        help='Steps after the layout: ' + ', '.join(analysis_steps()) +
        ' (default: all; give none to skip them all)')
    layout.add_argument(
        '--features', metavar='FEATS.npy',
        help='Lay out a plain (N, C) feature matrix instead of a model\'s '
        'features; CONFIG and --checkpoint are then not used')
    layout.add_argument(
        '--labels', metavar='FILE',
        help='With --features: labels, one per row (.npy, or a text file '
        'of class ids or class names, one per line)')
    layout.add_argument(
        '--images', metavar='LIST_OR_DIR',
        help='With --features: the image of each row, as a text file of '
        'paths (one per line) or a folder (its images in sorted order)')

    extra = parser.add_argument_group('sampling and extraction')
    extra.add_argument('--seed', type=int,
                       help='Seed of sampling and t-SNE. Defaults to 0')
    extra.add_argument(
        '--sampling', choices=['random', 'first'], default='random',
        help="random: seeded stratified sample per class (default); first: "
        "the first N of each class in file order, as mmpretrain's tool")
    extra.add_argument('--batch-size', type=int,
                       help='Overrides test_dataloader.batch_size')
    extra.add_argument('--num-workers', type=int,
                       help='Overrides test_dataloader.num_workers')
    extra.add_argument(
        '--token-pool', choices=['mean', 'cls'], default='mean',
        help='Pooling of (N, L, C) token features: mean over tokens '
        '(default) or the class token (token 0)')
    extra.add_argument(
        '--trust-checkpoint', action='store_true',
        help='Unpickle the checkpoint fully. This can run code from the file: '
        'only for checkpoints you trust')
    extra.add_argument(
        '--no-cache', action='store_true',
        help='Always extract, even when an earlier run in the work dir has '
        'the features of the same config, checkpoint, stage and samples')
    extra.add_argument('--launcher', choices=LAUNCHERS,
                       default='none', help='job launcher')
    extra.add_argument('--local_rank', '--local-rank', type=int, default=0,
                       help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.apis import run_features, run_vis_tsne
    from tsneviz.errors import UserError

    layout = {field.name: getattr(args, field.name)
              for field in layout_fields() if field.is_flag}
    argv_used = [sys.argv[0]] + list(argv if argv is not None
                                     else sys.argv[1:])
    # plt.show() without a display fails or does nothing, silently
    no_display = display_problem() if args.show else None
    show = args.show and no_display is None
    if args.features is not None:
        run_dir = run_features(
            args.features, labels=args.labels, images=args.images,
            work_dir=args.work_dir, method=args.method, tsne=layout,
            seed=args.seed, legend=args.legend, show=show,
            analysis=args.analysis, argv=argv_used)
        print_run_dir(run_dir, no_display)
        return
    if args.config is None:
        raise UserError('pass a CONFIG (an mmpretrain config file), or '
                        '--features FEATS.npy for a plain feature matrix')
    run_dir = run_vis_tsne(
        args.config, args.checkpoint, work_dir=args.work_dir,
        test_cfg=args.test_cfg, vis_stage=args.vis_stage,
        class_idx=args.class_idx, max_num_class=args.max_num_class,
        max_num_samples=args.max_num_samples, cfg_options=args.cfg_options,
        device=args.device, legend=args.legend, show=show, tsne=layout,
        seed=args.seed, sampling=args.sampling, batch_size=args.batch_size,
        num_workers=args.num_workers, launcher=args.launcher,
        token_pool=args.token_pool, trust_checkpoint=args.trust_checkpoint,
        use_cache=not args.no_cache, method=args.method,
        analysis=args.analysis, argv=argv_used)
    if run_dir is not None:
        print_run_dir(run_dir, no_display)


def print_run_dir(run_dir, no_display=None):
    """The run directory on stdout; where to look next on stderr.

    Args:
        run_dir (str): The run directory.
        no_display (str, optional): Why ``--show`` could not show the
            plot; then a warning says where it is instead.
    """
    from tsneviz.rundir import EXPLORER_PAGE, Run, plot_file

    print(run_dir, flush=True)
    if no_display:
        plots = [osp.join(run_dir, plot_file(key))
                 for key in Run(run_dir).keys]
        print(f'warning: --show: {no_display}; the plot is saved but not '
              f'shown: {", ".join(plots)}', file=sys.stderr)
    page = osp.join(osp.abspath(run_dir), EXPLORER_PAGE)
    if osp.isfile(page):
        print(f'explorer: {file_uri(page)}', file=sys.stderr)
        serve = tool_command('serve.py', osp.dirname(osp.abspath(run_dir)))
        if serve:
            print('serve:    ' + serve, file=sys.stderr)


if __name__ == '__main__':
    run(main)
