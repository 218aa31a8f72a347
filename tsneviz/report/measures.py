"""What the report measures about a run.

The confusion counts, per-class errors and predictions, and the
separation metrics of a feature key (from ``run.json`` or computed).
"""
from typing import List, Optional, Tuple

import numpy as np

from tsneviz.rundir import MANIFEST, Run


def confusion_data(run: Run) -> Optional[Tuple[np.ndarray, List[int],
                                               List[str]]]:
    """The confusion matrix counts that the report draws.

    Args:
        run (Run): A run read back.

    Returns:
        tuple | None: None without predictions of the dataset's classes;
        else ``(matrix, ids, names)``: ``matrix[i, j]`` counts samples of
        class ``ids[i]`` predicted as ``ids[j]`` (ids of the model's
        classes, every one that occurs as truth or prediction), ``names``
        their names.
    """
    from sklearn.metrics import confusion_matrix

    space = run.label_space
    if not run.has_predictions or not space.matched:
        return None
    gt = space.to_model(run.labels)
    pred = run.table['pred_label'].astype(np.int64)
    ids = [int(i) for i in np.union1d(gt, pred)]
    return (confusion_matrix(gt, pred, labels=ids), ids,
            [space.model_name(i) for i in ids])


def class_errors(run: Run) -> Optional[List[dict]]:
    """Per-class accuracy, mean loss and commonest mistake, worst first.

    Args:
        run (Run): A run read back.

    Returns:
        list[dict] | None: None without predictions of the dataset's
        classes; else one dict per true class (``label``, ``name``, ``n``,
        ``accuracy``, ``mean_loss``, ``confused_with`` (name or None) and
        ``confused_count``), sorted by accuracy ascending, then mean loss
        descending.
    """
    space = run.label_space
    if not run.has_predictions or not space.matched:
        return None
    gt = run.labels
    pred = run.table['pred_label'].astype(np.int64)
    loss = run.table.get('loss', np.full(len(gt), np.nan)).astype(float)
    out = []
    for c in np.unique(gt):
        members = gt == c
        model_id = int(space.to_model([c])[0])
        wrong = pred[members & (pred != model_id)]
        top, count = None, 0
        if len(wrong):
            ids, counts = np.unique(wrong, return_counts=True)
            top = space.model_name(ids[counts.argmax()])
            count = int(counts.max())
        losses = loss[members]
        out.append(dict(
            label=int(c), name=space.dataset_name(c), n=int(members.sum()),
            accuracy=float(np.mean(pred[members] == model_id)),
            mean_loss=float(np.nanmean(losses))
            if np.isfinite(losses).any() else None,
            confused_with=top, confused_count=count))
    out.sort(key=lambda r: (r['accuracy'], -(r['mean_loss'] or 0.0)))
    return out


def class_predictions(run: Run) -> Optional[List[dict]]:
    """What the model predicts for each true class, in its own classes.

    Args:
        run (Run): A run read back.

    Returns:
        list[dict] | None: None without predictions; else one dict per
        true class, in id order: ``label``, ``name``, ``n``,
        ``predicted`` (name of the commonest prediction), ``share`` (its
        share of the class) and ``distinct`` (number of different
        predictions).
    """
    if not run.has_predictions:
        return None
    space = run.label_space
    gt = run.labels
    pred = run.table['pred_label'].astype(np.int64)
    out = []
    for c in np.unique(gt):
        ids, counts = np.unique(pred[gt == c], return_counts=True)
        out.append(dict(label=int(c), name=space.dataset_name(c),
                        n=int(counts.sum()),
                        predicted=space.model_name(ids[counts.argmax()]),
                        share=float(counts.max() / counts.sum()),
                        distinct=int(len(ids))))
    return out


def run_metrics(run: Run, key: str) -> Tuple[dict, str]:
    """Separation metrics of ``key``: from ``run.json``, else computed.

    Args:
        run (Run): A run read back.
        key (str): Feature key.

    Returns:
        tuple: ``(metrics, source)``, source ``'run.json'`` or
        ``'computed'``.
    """
    from tsneviz.metrics import separation_metrics

    stored = (run.manifest.get('results') or {}).get(key) or {}
    needed = ('knn_accuracy_features', 'knn_accuracy_embedding',
              'trustworthiness')
    if all(stored.get(name) is not None for name in needed):
        return dict(stored), MANIFEST
    computed = separation_metrics(run.features(key), run.coords(key),
                                  run.labels, k=10,
                                  seed=int(run.manifest.get('seed', 0)))
    return {**stored, **computed}, 'computed'
