"""Where the map can be trusted: neighbourhoods a layout kept and lost.

:func:`measure_reliability` adds to a run:

- a ``map_reliability`` column to ``samples.csv``: per sample, the share
  of its ``k`` nearest neighbours in feature space (the run's shared
  neighbour graph, ``neighbors_<key>.npz``: no new search in feature
  space) that are also among its ``k`` nearest on the map (an exact k-NN
  on the 2-D/3-D coordinates, a KD-tree). 1: the map keeps the sample's
  neighbourhood; about ``k / (N - 1)`` (``chance`` in ``run.json``): it
  does no better than a random map. Known as the neighbourhood
  preservation or "k-NN recall" of a sample (Lee & Verleysen, "Quality
  assessment of dimensionality reduction: Rank-based criteria",
  Neurocomputing 2009).
- ``continuity`` and ``distance_spearman`` next to ``trustworthiness`` in
  the key's ``results`` of ``run.json`` (:func:`tsneviz.metrics.continuity`
  on trustworthiness's rows and neighbourhood size;
  :func:`tsneviz.metrics.distance_spearman` on seeded random pairs);
- a ``reliability`` section: the column's summary and the least reliable
  regions of the map (clusters, or cells of a grid on the map), and the
  figure ``reliability_<key>.png``: the map coloured by the column.

t-SNE keeps local structure (trustworthiness, continuity and the column
high) and not global structure: distances between clusters mean little,
which the distance correlation shows.

All of it is linear in N but for the map's KD-tree (N log N): a run of a
million points is planned.
"""
import os.path as osp
from typing import Dict, List, Optional

import numpy as np

from tsneviz.errors import UserError
from tsneviz.metrics import check_k
from tsneviz.rundir import (
    CLUSTER_COLUMN,
    Run,
    add_columns,
    atomic_write,
    flat_view_note,
    update_manifest,
)

__all__ = ['COLUMN', 'DEFAULT_K', 'LOW', 'neighbourhood_overlap',
           'map_neighbors', 'reliability_regions', 'plot_reliability',
           'measure_reliability', 'figure_file']

#: The per-sample column of ``samples.csv``.
COLUMN = 'map_reliability'
#: Neighbours compared: the scale of the run's other neighbourhood figures
#: (10-NN accuracy, trustworthiness), within the 20 the shared graph keeps.
DEFAULT_K = 10
#: A sample is "unreliable" when its map keeps less than this share of its
#: neighbours; regions report the share of such samples.
LOW = 0.5
#: Regions without clusters: cells of a GRID x GRID grid over the map.
GRID = 8
#: Regions (clusters or cells) with fewer samples are not ranked: a mean of
#: a handful of samples is noise.
MIN_REGION_SIZE = 10
#: Regions kept in ``run.json`` and marked on the figure, worst first.
TOP_REGIONS = 10

# Upper bound on the elements of one (rows, k, k) comparison block.
_BLOCK_ELEMENTS = 4_000_000


def figure_file(key: str) -> str:
    """``reliability_<key>.png``: the map coloured by reliability."""
    return f'reliability_{key}.png'


def neighbourhood_overlap(feature_neighbors: np.ndarray,
                          map_neighbors: np.ndarray) -> np.ndarray:
    """Per row, the share of its feature neighbours among its map ones.

    Args:
        feature_neighbors (np.ndarray): (N, k) positions of each sample's
            k nearest others in feature space.
        map_neighbors (np.ndarray): (N, k) the same on the map.

    Returns:
        np.ndarray: (N,) float64 in [0, 1].

    Examples:
        >>> neighbourhood_overlap(np.array([[1, 2], [0, 2]]),
        ...                       np.array([[2, 1], [2, 3]])).tolist()
        [1.0, 0.5]
    """
    feature_neighbors = np.asarray(feature_neighbors)
    map_neighbors = np.asarray(map_neighbors)
    if feature_neighbors.shape != map_neighbors.shape:
        raise ValueError(f'neighbour arrays differ in shape: '
                         f'{feature_neighbors.shape} and '
                         f'{map_neighbors.shape}')
    n, k = feature_neighbors.shape
    shared = np.empty(n, np.float64)
    # k x k comparisons per row, in blocks: linear in N, bounded memory
    block = max(1, _BLOCK_ELEMENTS // max(k * k, 1))
    for start in range(0, n, block):
        f = feature_neighbors[start:start + block]
        m = map_neighbors[start:start + block]
        hits = (f[:, :, None] == m[:, None, :]).any(axis=2).sum(axis=1)
        shared[start:start + block] = hits / k
    return shared


def map_neighbors(coords: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` nearest other samples of each sample on the map.

    Exact, with scikit-learn's KD-tree: O(N log N) in 2-D or 3-D.

    Returns:
        np.ndarray: (N, k) int64 positions, nearest first.
    """
    from sklearn.neighbors import NearestNeighbors

    from tsneviz.metrics import nearest_neighbors

    coords = np.ascontiguousarray(coords, dtype=np.float64)
    tree = NearestNeighbors(algorithm='kd_tree').fit(coords)
    return nearest_neighbors(coords, k, index=tree, chunk=65536)[0]


def reliability_regions(values: np.ndarray, coords: np.ndarray,
                        labels: np.ndarray, names,
                        cluster: Optional[np.ndarray] = None,
                        grid: int = GRID,
                        min_size: int = MIN_REGION_SIZE) -> Dict:
    """Regions of the map ranked by mean reliability, least reliable first.

    A region is a cluster (``cluster`` given, HDBSCAN's noise ``-1`` left
    out) or else a cell of a ``grid`` x ``grid`` grid over the map's first
    two axes. Regions under ``min_size`` samples are not ranked.

    Args:
        values (np.ndarray): (N,) reliability per sample.
        coords (np.ndarray): (N, 2|3) the map.
        labels (np.ndarray): (N,) class ids.
        names (Callable): Class id -> name.
        cluster (np.ndarray, optional): (N,) cluster ids. Defaults to None.
        grid (int): Cells per axis without clusters. Defaults to 8.
        min_size (int): Smallest region ranked. Defaults to 10.

    Returns:
        dict: ``by`` (``'cluster'`` or ``'grid'``) and ``regions``: dicts
        with ``rank``, ``region`` (its name), ``size``,
        ``mean_reliability``, ``low_share`` (share below :data:`LOW`),
        ``dominant_class``, ``x`` and ``y`` (its mean position).

    Examples:
        >>> found = reliability_regions(values, coords, labels, str)
        >>> found['regions'][0]['mean_reliability'] <= \\
        ...     found['regions'][-1]['mean_reliability']
        True
    """
    xy = np.asarray(coords, np.float64)[:, :2]
    if cluster is not None and (np.asarray(cluster) >= 0).any():
        by, ids = 'cluster', np.asarray(cluster, np.int64)
        keep = ids >= 0
    else:
        by = 'grid'
        low, high = xy.min(axis=0), xy.max(axis=0)
        cell = np.floor((xy - low) / np.maximum(high - low, 1e-12) * grid)
        cell = np.clip(cell, 0, grid - 1).astype(np.int64)
        ids = cell[:, 0] * grid + cell[:, 1]
        keep = np.ones(len(ids), bool)
    ids, values, xy = ids[keep], np.asarray(values)[keep], xy[keep]
    labels = np.asarray(labels, np.int64)[keep]
    # one pass per statistic (bincount): linear in N
    size = np.bincount(ids)
    present = np.flatnonzero(size >= min_size)
    safe = np.maximum(size, 1)
    mean = np.bincount(ids, values) / safe
    low_share = np.bincount(ids, values < LOW) / safe
    cx = np.bincount(ids, xy[:, 0]) / safe
    cy = np.bincount(ids, xy[:, 1]) / safe
    order = present[np.argsort(mean[present], kind='stable')]
    regions = []
    for rank, r in enumerate(order[:TOP_REGIONS], 1):
        members = labels[ids == r]
        classes, counts = np.unique(members, return_counts=True)
        top = classes[counts.argmax()]
        name = f'cluster {r}' if by == 'cluster' else \
            f'cell ({r // grid}, {r % grid})'
        regions.append(dict(
            rank=rank, region=name, size=int(size[r]),
            mean_reliability=round(float(mean[r]), 4),
            low_share=round(float(low_share[r]), 4),
            dominant_class=str(names(int(top))),
            x=round(float(cx[r]), 4), y=round(float(cy[r]), 4)))
    return dict(by=by, n_regions=int(len(present)), regions=regions)


def plot_reliability(coords: np.ndarray, values: np.ndarray,
                     regions: List[dict], out_path: str,
                     title: str = '', marked: int = 5) -> str:
    """The map coloured by reliability, the worst regions numbered.

    Args:
        coords (np.ndarray): (N, 2|3) the map (first two axes drawn; the
            title then says so, :func:`tsneviz.rundir.flat_view_note`).
        values (np.ndarray): (N,) reliability in [0, 1].
        regions (list[dict]): :func:`reliability_regions`' ``regions``.
        out_path (str): The PNG, written atomically.
        title (str): Axes title. Defaults to ''.
        marked (int): How many of the worst regions get their rank drawn.
            Defaults to 5.

    Returns:
        str: ``out_path``.
    """
    import matplotlib.patheffects as effects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 5.2))
    FigureCanvasAgg(fig)  # no pyplot figure, no window
    ax = fig.add_subplot()
    n = len(values)
    # least reliable on top, where the eye should go
    order = np.argsort(-np.asarray(values), kind='stable')
    dots = ax.scatter(coords[order, 0], coords[order, 1], c=values[order],
                      cmap='viridis', vmin=0.0, vmax=1.0,
                      s=float(np.clip(6000.0 / max(n, 1), 0.5, 16.0)),
                      linewidths=0, rasterized=True)
    for region in regions[:marked]:
        # beside the region's centre, so its points stay visible
        ax.annotate(str(region['rank']), (region['x'], region['y']),
                    xytext=(14, 10), textcoords='offset points',
                    fontsize=12, fontweight='bold', ha='center',
                    va='center', color='white',
                    path_effects=[effects.withStroke(linewidth=3,
                                                     foreground='black')])
    fig.colorbar(dots, ax=ax, label='map reliability (share of feature-'
                 'space neighbours kept)')
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect('equal', adjustable='datalim')
    title = '\n'.join(filter(None, [title, flat_view_note(coords.shape[1])]))
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    atomic_write(out_path, lambda f: fig.savefig(f, format='png', dpi=80))
    return out_path


def _feature_neighbors(run: Run, key: str, k: int) -> dict:
    """The run's shared graph of ``key``; searched only for an old run."""
    from tsneviz.analysis.neighbors import compute_neighbors

    stored = run.neighbors(key)
    if stored is None:
        # a run made before the shared graph: the neighbours step's search,
        # stored once for every reader
        compute_neighbors(run.path, k=min(max(k, 20), len(run) - 1),
                          key=key)
        stored = Run(run.path).neighbors(key)
    if stored['indices'].shape[1] < k:
        raise UserError(f'the neighbour graph of {key} keeps '
                        f'{stored["indices"].shape[1]} neighbours per '
                        f'sample; use --k {stored["indices"].shape[1]} or '
                        'less')
    return stored


def measure_reliability(run_dir: str, k: int = DEFAULT_K,
                        key: Optional[str] = None,
                        n_pairs: Optional[int] = None) -> dict:
    """Measure where a run's map can be trusted, and record it.

    Adds the ``map_reliability`` column to ``samples.csv``,
    ``continuity`` and ``distance_spearman`` to the key's ``results`` in
    ``run.json`` (next to ``trustworthiness``, on its rows and
    neighbourhood size), writes ``reliability_<key>.png`` and a
    ``reliability`` section (last).

    Args:
        run_dir (str): A complete run directory.
        k (int): Neighbours compared per sample. Defaults to 10, at most
            the graph's columns and N - 1.
        key (str, optional): Feature key; default the run's first.
        n_pairs (int, optional): Pairs of the distance correlation.
            Defaults to :data:`tsneviz.metrics.SPEARMAN_PAIRS`.

    Returns:
        dict: The ``reliability`` section: ``key``, ``k``, ``mean``,
        ``median``, ``chance``, ``low_share``, ``graph`` (space and metric
        of the feature neighbours), ``continuity``, ``distance_spearman``,
        ``distance_spearman_pairs``, ``by`` and ``regions``.

    Raises:
        UserError: A bad ``k``, too few samples, or a graph with fewer
            than ``k`` neighbours.

    Examples:
        >>> section = measure_reliability(run_dir)
        >>> section['mean'] > section['chance']
        True
    """
    from tsneviz.metrics import (
        SPEARMAN_PAIRS,
        TRUSTWORTHINESS_MAX_SAMPLES,
        continuity,
        distance_spearman,
    )

    run = Run(run_dir)
    key = run.key(key)
    n = len(run)
    k = check_k(k)
    if n < 3:
        raise UserError(f'{run_dir} has {n} samples; map reliability needs '
                        'at least 3')
    n_pairs = SPEARMAN_PAIRS if n_pairs is None else n_pairs
    if int(n_pairs) != n_pairs or n_pairs < 2:
        raise UserError(f'pairs must be an integer >= 2, got {n_pairs}')
    k = min(int(k), n - 1)
    stored = _feature_neighbors(run, key, k)
    coords = run.coords(key)
    values = neighbourhood_overlap(stored['indices'][:, :k],
                                   map_neighbors(coords, k))

    manifest = run.manifest
    seed = int(manifest.get('seed', 0))
    results = dict((manifest.get('results') or {}).get(key) or {})
    n_used = min(n, TRUSTWORTHINESS_MAX_SAMPLES)
    # trustworthiness's neighbourhood and rows: the two are one pair
    trust_k = int(results.get('trustworthiness_k',
                              min(10, (n_used - 1) // 2)))
    features = run.features(key)
    figures = {}
    if trust_k >= 1:
        figures.update(continuity=round(continuity(
            features, coords, trust_k, TRUSTWORTHINESS_MAX_SAMPLES, seed), 6),
            continuity_k=trust_k, n_samples_continuity=int(n_used))
    rho, pairs = distance_spearman(features, coords, int(n_pairs), seed)
    del features
    # NaN (every distance equal) is no number JSON can hold
    figures.update(distance_spearman=round(rho, 6) if np.isfinite(rho)
                   else None, distance_spearman_pairs=pairs)

    cluster = run.table.get(CLUSTER_COLUMN)
    if cluster is not None:
        cluster = np.where(np.isnan(cluster.astype(float)), -1,
                           cluster).astype(np.int64)
    found = reliability_regions(values, coords, run.labels,
                                run.label_space.dataset_name, cluster)
    figure = figure_file(key)
    plot_reliability(coords, values, found['regions'],
                     osp.join(run_dir, figure),
                     title=f'{key}: where the map keeps feature-space '
                     f'neighbours ({k}-NN)')
    add_columns(run_dir, {COLUMN: [round(float(v), 4) for v in values]})
    section = dict(
        key=key, k=k, mean=round(float(values.mean()), 4),
        median=round(float(np.median(values)), 4),
        chance=round(k / (n - 1), 4),
        low_share=round(float((values < LOW).mean()), 4),
        graph=dict(space=stored.get('space', 'features'),
                   metric=stored['metric']),
        **figures, **found, figure=figure)
    results.update(figures)
    all_results = dict(manifest.get('results') or {})
    all_results[key] = results
    update_manifest(run_dir, {'results': all_results,
                              'reliability': section}, outputs=[figure])
    return section
