"""Clustering of a run directory: ids, summary, plot, manifest.

Reads a complete run, clusters its features (or its embedding), and writes
back what later steps and people read: a ``cluster`` column in
``samples.csv``, ``clusters.csv`` (see :mod:`tsneviz.analysis.summary`),
``<key>_cluster.png``, and last a ``clusters`` section in ``run.json``.
"""
import os.path as osp
import time
from typing import List, Optional

from tsneviz import rundir
from tsneviz.errors import UserError

from .clustering import (
    LARGE_N,
    build_clusterer,
    check_method,
    check_size,
    cluster_features,
    default_n_clusters,
)
from .summary import SUMMARY, summarize_clusters, write_summary

CLUSTER_COLUMN = rundir.CLUSTER_COLUMN
#: What can be clustered: the extracted features or the t-SNE coordinates.
SPACES = ('features', 'embedding')


def cluster_run(run_dir: str, method: str = 'kmeans',
                n_clusters: Optional[int] = None, on: str = 'features',
                key: Optional[str] = None, pca_dims: Optional[int] = 50,
                seed: int = 0, large_n: Optional[int] = LARGE_N,
                **params) -> List[dict]:
    """Cluster a run and write the cluster column, summary and plot.

    Features are the default because they are what the model computes;
    t-SNE keeps neighbourhoods but not the distances between groups, so
    clusters of the embedding mirror the picture rather than the model
    (``on='embedding'`` is there for exactly that: to name the islands one
    sees).

    Args:
        run_dir (str): A complete run directory.
        method (str): ``'kmeans'``, ``'agglomerative'`` or ``'hdbscan'``.
            Defaults to ``'kmeans'``.
        n_clusters (int, optional): Clusters for k-means/agglomerative; None
            takes one per class present in the run (see
            :func:`~tsneviz.analysis.clustering.default_n_clusters`); must
            be None for HDBSCAN. Defaults to None.
        on (str): ``'features'`` or ``'embedding'``. Defaults to
            ``'features'``.
        key (str, optional): Feature key; None takes the run's first.
            Defaults to None.
        pca_dims (int, optional): PCA the features to this many dimensions
            first; None or 0 turns it off (no effect on an embedding).
            Defaults to 50.
        seed (int): Seed of the PCA and k-means. Defaults to 0.
        large_n (int, optional): From this many samples on, the
            near-linear path of each method (MiniBatchKMeans, HDBSCAN on
            a sample; agglomerative refuses; see
            :mod:`tsneviz.analysis.clustering`); None never. Defaults to
            :data:`~tsneviz.analysis.clustering.LARGE_N`.
        **params: Other parameters of the method (``linkage``, ``metric``,
            ``min_cluster_size``, ``min_samples``, ...).

    Returns:
        list[dict]: The rows of ``clusters.csv``, rank order.

    Raises:
        UserError: For a directory that is not a complete run, an unknown
            key, method or space, or bad parameters.

    Examples:
        >>> rows = cluster_run('work_dirs/digits/tsne_20261123_144017')
        >>> rows[0]['rank'], rows[0]['top_confusions']
        (1, '8->6:1')
    """
    # Imported here: plotting is only needed once the clustering is done.
    from tsneviz.visualization import plot_view

    run = rundir.Run(run_dir)
    key = run.key(key)
    if on not in SPACES:
        raise UserError(f'cannot cluster on {on!r}; choose one of '
                        f'{", ".join(SPACES)}')
    check_method(method)
    if n_clusters is None and method != 'hdbscan':
        n_clusters = default_n_clusters(run.labels)
    # Bad parameters fail here, before features are loaded and PCA runs.
    build_clusterer(method, n_clusters=n_clusters, **params)
    check_size(method, len(run), large_n)
    started = time.perf_counter()
    X = run.features(key) if on == 'features' else run.coords(key)
    timings = dict(load=round(time.perf_counter() - started, 3))
    ids = cluster_features(X, method, n_clusters=n_clusters,
                           pca_dims=pca_dims if on == 'features' else None,
                           seed=seed, large_n=large_n, timings=timings,
                           **params)
    strategy = timings.pop('strategy')

    started = time.perf_counter()
    rundir.add_columns(run_dir, {CLUSTER_COLUMN: ids})
    run.table[CLUSTER_COLUMN] = ids.astype(float)
    rows = summarize_clusters(ids, run.table, run.label_space)
    write_summary(osp.join(run_dir, SUMMARY), rows)
    timings['summary'] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    plot = plot_view(
        run.coords(key), run.table, 'cluster',
        osp.join(run_dir, rundir.plot_file(key, 'cluster')),
        title=f'{key} · {method} clusters of the {on}',
        label_space=run.label_space,
        # Big points = high loss: the costly clusters show at a glance.
        size_by_loss='loss' in run.table)
    timings['plot'] = round(time.perf_counter() - started, 3)

    found = sorted(set(ids.tolist()) - {-1})
    section = dict(
        method=method, on=on, key=key, seed=seed,
        pca_dims=pca_dims if on == 'features' else None,
        params={k: v for k, v in params.items() if v is not None},
        n_clusters_requested=n_clusters, n_clusters=len(found),
        n_noise=int((ids == -1).sum()), ranked_by=(
            'mean_loss' if 'loss' in run.table else 'error_rate'
            if run.has_predictions and run.label_space.matched
            else 'size'),
        summary=SUMMARY, column=CLUSTER_COLUMN,
        # which path ran (exact, or a large-N one) and seconds per part
        strategy=strategy, large_n=large_n, timings=timings)
    # run.json last, so it only ever lists files that are complete.
    rundir.update_manifest(run_dir, {'clusters': section}, outputs=[
        rundir.TABLE, SUMMARY, osp.basename(plot)])
    return rows

