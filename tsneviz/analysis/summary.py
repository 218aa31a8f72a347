"""Per-cluster summary of a run: what each cluster holds, what goes wrong.

One row per cluster, ranked so the first rows are where to look: by mean
loss when the run has predictions (rank 1 = highest mean loss), by size
otherwise. ``clusters.csv`` columns:

================ ==============================================================
rank             1 = the cluster to look at first
cluster          cluster id (``-1``: HDBSCAN noise, samples in no cluster)
size             number of samples
purity           share of the cluster's most common ground-truth class
dominant_class   that class
dominant_share   share of all samples of that class that lie in this cluster
                 (below 1: the class is split over clusters)
classes          top-3 ground-truth classes as ``name:count;name:count``
error_rate       share of misclassified samples (empty without predictions
                 comparable with the truth, see :mod:`tsneviz.labels`)
mean_loss        mean per-sample loss (empty without it)
top_confusions   top-3 ``gt->pred:count`` pairs among misclassified samples,
                 e.g. ``cat->dog:7;cat->fox:2`` (empty when none)
================ ==============================================================
"""
from collections import Counter
from typing import Dict, List, Optional, Sequence

import numpy as np

from tsneviz import rundir
from tsneviz.labels import LabelSpace

#: Columns of ``clusters.csv``, in order (the schema is rundir's).
COLUMNS = rundir.CLUSTER_COLUMNS

#: File name of the summary in the run directory.
SUMMARY = rundir.CLUSTERS

# Four decimals tell 0.9583 from 0.9600 at a glance; more is noise.
_DECIMALS = 4


def _top(counter: Counter, top: int) -> str:
    # Ties broken by name so the same run always gives the same text.
    items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return ';'.join(f'{name}:{count}' for name, count in items)


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(float(value), _DECIMALS)


def summarize_clusters(cluster_ids: Sequence[int], table: Dict,
                       label_space: Optional[LabelSpace] = None,
                       top: int = 3) -> List[dict]:
    """Summarise each cluster of a run, ranked by mean loss (or size).

    Args:
        cluster_ids (Sequence[int]): Cluster id of each sample, (N,).
        table (dict): Per-sample columns as in ``samples.csv`` (e.g.
            ``Run.table``): ``gt_label`` and optionally ``gt_class``,
            ``pred_label``, ``pred_class``, ``loss``.
        label_space (LabelSpace, optional): Names of the dataset's and the
            model's classes and whether predictions compare with the truth
            (``Run.label_space``); None reads names from the table's
            ``gt_class``/``pred_class`` and compares ids as they are.
            Defaults to None.
        top (int): Entries in ``classes`` and ``top_confusions``. Defaults
            to 3.

    Returns:
        list[dict]: One row per cluster with the keys :data:`COLUMNS`, in
        rank order. ``error_rate`` and ``mean_loss`` are None when the table
        has no predictions, or ones of another label space (never made
        up).

    Examples:
        >>> table = dict(gt_label=[0, 0, 1, 1], gt_class=['cat', 'cat',
        ...              'dog', 'dog'], pred_label=[1, 0, 1, 1],
        ...              pred_class=['dog', 'cat', 'dog', 'dog'],
        ...              loss=[2.0, 0.1, 0.1, 0.2])
        >>> rows = summarize_clusters([0, 0, 1, 1], table)
        >>> rows[0]['cluster'], rows[0]['top_confusions']
        (0, 'cat->dog:1')
    """
    ids = np.asarray(cluster_ids, dtype=np.int64)
    n = len(ids)
    if len(table['gt_label']) != n:
        raise ValueError(f'{n} cluster ids for {len(table["gt_label"])} '
                         'samples')
    space = label_space or LabelSpace.assumed(None, table)
    gt_ids = np.asarray(table['gt_label'], dtype=float).astype(np.int64)
    gt = np.array([space.dataset_name(y) for y in gt_ids], dtype=object)
    correct = None
    if 'pred_label' in table:
        pred_ids = np.asarray(table['pred_label'],
                              dtype=float).astype(np.int64)
        correct = space.correct(gt_ids, pred_ids)
    has_pred = correct is not None
    if has_pred:
        wrong = ~correct
        pred = np.array([space.model_name(y) for y in pred_ids],
                        dtype=object)
    has_loss = has_pred and 'loss' in table
    if has_loss:
        loss = np.asarray(table['loss'], dtype=float)
    class_total = Counter(gt)

    rows = []
    for cluster in np.unique(ids):
        member = ids == cluster
        size = int(member.sum())
        counts = Counter(gt[member])
        dominant, dominant_n = sorted(counts.items(),
                                      key=lambda kv: (-kv[1], kv[0]))[0]
        row = dict(cluster=int(cluster), size=size,
                   purity=_round(dominant_n / size),
                   dominant_class=dominant,
                   dominant_share=_round(dominant_n / class_total[dominant]),
                   classes=_top(counts, top), error_rate=None,
                   mean_loss=None, top_confusions='')
        if has_pred:
            bad = member & wrong
            row['error_rate'] = _round(bad.sum() / size)
            row['top_confusions'] = _top(
                Counter(f'{g}->{p}' for g, p in zip(gt[bad], pred[bad])),
                top)
        if has_loss:
            finite = loss[member][np.isfinite(loss[member])]
            row['mean_loss'] = _round(finite.mean()) if len(finite) else None
        rows.append(row)

    if has_loss:
        # Highest mean loss first; a cluster without any loss value last.
        def key(r):
            return (-(r['mean_loss'] if r['mean_loss'] is not None
                      else -np.inf), -r['size'], r['cluster'])
    elif has_pred:
        def key(r):
            return (-r['error_rate'], -r['size'], r['cluster'])
    else:
        def key(r):
            return (-r['size'], r['cluster'])
    rows.sort(key=key)
    return [{'rank': i, **{c: r[c] for c in COLUMNS[1:]}}
            for i, r in enumerate(rows, 1)]


def write_summary(path: str, rows: List[dict]) -> str:
    """Write summary rows as ``clusters.csv`` (atomically).

    Args:
        path (str): Output CSV path.
        rows (list[dict]): Rows from :func:`summarize_clusters`.

    Returns:
        str: ``path``.

    Examples:
        >>> write_summary('/tmp/clusters.csv', [])
        '/tmp/clusters.csv'
    """
    # None (no predictions) is written as an empty cell.
    return rundir.write_table(path, {c: [r[c] for r in rows]
                                     for c in COLUMNS})
