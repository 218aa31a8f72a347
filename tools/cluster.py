"""Cluster a tsneviz run and rank the clusters by what the model gets wrong.

Writes a ``cluster`` column into ``samples.csv``, ``clusters.csv`` (one row
per cluster, highest mean loss first), ``<key>_cluster.png``, and updates
``run.json``. The work itself is ``tsneviz.analysis.runs.cluster_run``.
"""
import argparse
import os.path as osp

from tsneviz.cli import run

#: Clusters shown in the terminal; the CSV has them all.
SHOW_TOP = 10


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Cluster the features (or the t-SNE map) of a tsneviz '
        'run and list the clusters with the highest mean loss first.')
    parser.add_argument('run_dir', help='a run directory of tools/vis_tsne.py '
                        '(the one holding run.json)')
    # The registered clusterers (tsneviz.registry.CLUSTERERS) are the
    # choices, so a new one is a choice without an edit here.
    from tsneviz.analysis.clustering import methods
    parser.add_argument('--method', default='kmeans', choices=methods(),
                        help='clustering algorithm. Defaults to kmeans')
    parser.add_argument('--n-clusters', type=int,
                        help='clusters for kmeans/agglomerative. Defaults to '
                        'the number of classes in the run')
    parser.add_argument('--on', default='features',
                        choices=['features', 'embedding'],
                        help='cluster the extracted features or the t-SNE '
                        'coordinates. Defaults to features')
    parser.add_argument('--key', help="feature key, e.g. feat_3. Defaults to "
                        "the run's first")
    parser.add_argument('--pca-dims', type=int, default=50,
                        help='PCA the features to this many dimensions '
                        'first; 0 turns it off. Defaults to 50')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of PCA and k-means. Defaults to 0')
    parser.add_argument('--min-cluster-size', type=int,
                        help='hdbscan: smallest cluster. Defaults to 5')
    parser.add_argument('--min-samples', type=int,
                        help='hdbscan: neighbours that make a point a core '
                        'point. Defaults to --min-cluster-size')
    parser.add_argument('--linkage',
                        choices=['ward', 'complete', 'average', 'single'],
                        help='agglomerative: linkage. Defaults to ward')
    parser.add_argument('--metric', choices=['euclidean', 'cosine',
                                             'manhattan'],
                        help='agglomerative/hdbscan: distance. Defaults to '
                        'euclidean')
    return parser.parse_args(argv)


def _fmt(value, column=''):
    if column == 'cluster' and value == -1:
        return 'noise'
    if value is None:
        return '-'
    return f'{value:.3f}' if isinstance(value, float) else str(value)


def print_summary(rows, path, top=SHOW_TOP):
    """Print the first ``top`` clusters as a table, then the CSV path."""
    from rich.console import Console
    from rich.table import Table

    has_loss = bool(rows) and rows[0]['mean_loss'] is not None
    table = Table(title='clusters, highest mean loss first' if has_loss
                  else 'clusters, largest first (the run has no '
                  'predictions)')
    # Short headers so the table fits an 80-column terminal; clusters.csv
    # has the full names.
    columns = [('rank', '#'), ('cluster', 'cluster'), ('size', 'size'),
               ('purity', 'purity'), ('dominant_class', 'class'),
               ('classes', 'classes')]
    if has_loss:
        columns += [('error_rate', 'errors'), ('mean_loss', 'loss'),
                    ('top_confusions', 'confusions')]
    for name, header in columns:
        text = name in ('dominant_class', 'classes', 'top_confusions')
        table.add_column(header, justify='left' if text else 'right',
                         no_wrap=not text, overflow='fold')
    for row in rows[:top]:
        table.add_row(*(_fmt(row[c], c) for c, _ in columns))
    console = Console()
    console.print(table)
    if len(rows) > top:
        console.print(f'... {len(rows) - top} more clusters in the CSV')
    # Plain print: the path must stay on one line whatever the width.
    print(path)


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.analysis.runs import cluster_run
    from tsneviz.analysis.summary import SUMMARY
    from tsneviz.rundir import recorded_step

    params = dict(min_cluster_size=args.min_cluster_size,
                  min_samples=args.min_samples, linkage=args.linkage,
                  metric=args.metric)
    # A flag left unset is not passed, so each method keeps its defaults
    # and a flag of another method is an error that names it.
    params = {k: v for k, v in params.items() if v is not None}
    with recorded_step(args.run_dir, 'clusters'):
        rows = cluster_run(args.run_dir, method=args.method,
                           n_clusters=args.n_clusters, on=args.on,
                           key=args.key, pca_dims=args.pca_dims,
                           seed=args.seed, **params)
    print_summary(rows, osp.join(args.run_dir, SUMMARY))


if __name__ == '__main__':
    run(main)
