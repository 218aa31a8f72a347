"""Suspected label errors: which samples' given labels look wrong.

:func:`find_label_issues` adds two columns to ``samples.csv``:

- ``label_quality``: in [0, 1], lower = more likely mislabelled;
- ``label_issue``: True for a suspected label error.

and a ``label_issues`` section to ``run.json`` (``method``, ``k``,
``n_issues``, ...). Two methods:

- ``cleanlab``: with a classification head whose classes match the
  dataset's (:attr:`tsneviz.labels.LabelSpace.matched`), confident
  learning (Northcutt et al., "Confident Learning: Estimating Uncertainty
  in Dataset Labels", JAIR 2021) on the softmax of the stored logits:
  ``cleanlab.filter.find_label_issues`` flags, and
  ``cleanlab.rank.get_label_quality_scores`` (self-confidence, the
  probability of the given label) scores.
- ``knn_vote``: without one, the vote of the ``k`` nearest neighbours in
  feature space (the run's stored graph, ``neighbors_<key>.npz``): the
  edited nearest-neighbour rule (Wilson, "Asymptotic Properties of Nearest
  Neighbor Rules Using Edited Data", IEEE Trans. SMC 1972).

Predictions on the images the model was trained on hide label errors (the
model has learnt the wrong labels); held-out data, or the feature-space
vote, is the honest signal.

:func:`write_review` writes the suspects for a person to review: a CSV
sorted by quality and an mmpretrain annotation file.
"""
import os.path as osp
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from tsneviz.errors import UserError
from tsneviz.rundir import Run, add_columns, update_manifest, write_table

__all__ = ['METHODS', 'QUALITY', 'ISSUE', 'DEFAULT_K', 'knn_vote',
           'find_label_issues', 'suspects', 'write_review']

#: ``method`` values: ``auto`` is ``cleanlab`` where the head's classes
#: match the dataset's (and cleanlab is installed), else ``knn``.
METHODS = ('auto', 'cleanlab', 'knn')
QUALITY, ISSUE = 'label_quality', 'label_issue'
#: Neighbours that vote. Ten is the scale of the run's other k-NN figures
#: (10-NN accuracy), and is reliable with ~30+ samples per class; the
#: neighbors step stores 20, so no new search is needed.
DEFAULT_K = 10
#: Columns of the review CSV, in order.
REVIEW_COLUMNS = ('index', 'img_path', 'gt_label', 'gt_class', 'pred_class',
                  QUALITY, 'vote_class')
TRAIN_DATA_NOTE = ('predictions on the data the model was trained on hide '
                   'label errors; held-out data, or --method knn (the '
                   'feature-space vote), is the honest signal')


def knn_vote(labels: np.ndarray, indices: np.ndarray
             ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quality and issue of each sample by its neighbours' labels.

    The quality is the share of the ``k`` neighbours that carry the
    sample's own label. The sample is an issue when its label is not the
    plurality of its neighbourhood (another class has more votes): Wilson's
    edited nearest-neighbour rule. A plurality rather than a fixed quality
    threshold, because it needs no tuning with the class count: with ten
    classes a sample whose label holds 4 of 10 votes against 3, 2 and 1 is
    in its own class's region, and one with 4 against 6 is not. Unweighted
    votes: in a trained model's feature space the k nearest distances of
    one sample are nearly equal, so weights change little and add a
    parameter.

    Args:
        labels (np.ndarray): (N,) int labels; negative = unknown.
        indices (np.ndarray): (N, k) neighbour positions, the sample
            itself excluded.

    Returns:
        tuple: ``quality`` (N,) float in [0, 1] (NaN for an unknown
        label), ``issue`` (N,) bool and ``vote`` (N,) the plurality label
        of each neighbourhood (ties: the sample's own label when tied,
        else the smallest).

    Examples:
        >>> labels = np.array([0, 0, 0, 1])
        >>> idx = np.array([[1, 2], [0, 2], [0, 1], [0, 1]])
        >>> q, issue, vote = knn_vote(labels, idx)
        >>> q.tolist(), issue.tolist(), vote.tolist()
        ([1.0, 1.0, 1.0, 0.0], [False, False, False, True], [0, 0, 0, 0])
    """
    labels = np.asarray(labels, dtype=np.int64)
    votes = labels[indices]  # (N, k)
    known = labels >= 0
    quality = np.where(known, (votes == labels[:, None]).mean(axis=1),
                       np.nan)
    n_classes = int(max(labels.max(initial=0), votes.max(initial=0))) + 1
    counts = np.zeros((len(labels), n_classes), dtype=np.int64)
    rows = np.repeat(np.arange(len(labels)), votes.shape[1])
    valid = votes.ravel() >= 0
    np.add.at(counts, (rows[valid], votes.ravel()[valid]), 1)
    own = counts[np.arange(len(labels)), np.maximum(labels, 0)]
    top = counts.max(axis=1)
    issue = known & (own < top)
    vote = np.where(known & (own == top), labels, counts.argmax(axis=1))
    return quality, issue, vote


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _cleanlab(run: Run) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confident learning on the head's softmax, in the dataset's classes.

    The probabilities are those of the model's classes that the dataset's
    map to (``label_space.to_model``), renormalised: a 1000-class model on
    a 3-class folder is asked which of the 3 each image is, and cleanlab
    sees one column per dataset class, so label ``i`` is column ``i``.
    """
    from cleanlab.filter import find_label_issues as cl_find
    from cleanlab.rank import get_label_quality_scores

    space = run.label_space
    labels = run.labels
    columns = space.to_model(np.arange(space.dataset_size))
    known = (labels >= 0) & (labels < space.dataset_size)
    probs = _softmax(run.logits().astype(np.float64))[:, columns]
    probs /= np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)
    quality = np.full(len(run), np.nan)
    issue = np.zeros(len(run), dtype=bool)
    if known.sum() > 1:
        quality[known] = get_label_quality_scores(labels[known],
                                                  probs[known])
        issue[known] = cl_find(labels[known], probs[known])
    return quality, issue, probs.argmax(axis=1)


def _has_cleanlab() -> bool:
    try:
        import cleanlab  # noqa: F401
    except ImportError:
        return False
    return True


def _method(run: Run, method: str, logger) -> str:
    if method not in METHODS:
        raise UserError(f'unknown method {method!r}; choose one of '
                        f'{", ".join(METHODS)}')
    usable = run.logits() is not None and run.label_space.matched
    if method == 'cleanlab' and not usable:
        why = ('the run has no classification head' if run.logits() is None
               else "the model's classes are not the dataset's")
        raise UserError(f'method cleanlab needs predictions of the '
                        f'dataset\'s classes, but {why}; use --method knn')
    if method == 'cleanlab' and not _has_cleanlab():
        raise UserError('method cleanlab needs the cleanlab package: pip '
                        'install "cleanlab>=2.9,<3" (or use --method knn)')
    if method == 'auto':
        if usable and not _has_cleanlab():
            _log(logger, 'warning', 'label_issues: cleanlab is not '
                 'installed; using the feature-space vote (pip install '
                 '"cleanlab>=2.9,<3" to use the classification head)')
        method = 'cleanlab' if usable and _has_cleanlab() else 'knn'
    return method


def _log(logger, level: str, message: str) -> None:
    if logger is None:
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
    getattr(logger, level)(message)


def _neighbors(run: Run, key: str, k: int, show_progress: bool) -> dict:
    from tsneviz.analysis.neighbors import compute_neighbors

    stored = run.neighbors(key)
    if stored is None or stored['indices'].shape[1] < k:
        compute_neighbors(run.path, k=k, key=key,
                          show_progress=show_progress)
        stored = Run(run.path).neighbors(key)
    return stored


def find_label_issues(run_dir: str, method: str = 'auto',
                      k: int = DEFAULT_K, key: Optional[str] = None,
                      logger=None, show_progress: bool = False) -> dict:
    """Find the samples of a run whose given label looks wrong.

    Adds ``label_quality`` and ``label_issue`` to ``samples.csv`` and a
    ``label_issues`` section to ``run.json`` (last).

    Args:
        run_dir (str): A complete run directory.
        method (str): ``'auto'`` (cleanlab with a matched head, else the
            vote), ``'cleanlab'`` or ``'knn'``. Defaults to ``'auto'``.
        k (int): Neighbours that vote (``knn``). Defaults to
            :data:`DEFAULT_K`, at most the run's samples - 1.
        key (str, optional): Feature key of the vote; default the first.
        logger (MMLogger, optional): Where the method is logged; None: the
            current MMLogger.
        show_progress (bool): Progress bar of a neighbour search.
            Defaults to False.

    Returns:
        dict: The ``label_issues`` section: ``method`` (``'cleanlab'`` or
        ``'knn_vote'``), ``k`` (None for cleanlab), ``key``,
        ``n_issues``, ``n_samples`` and ``issue_rate``.

    Raises:
        UserError: Unknown method, bad k, or cleanlab without a matched
            head.

    Examples:
        >>> find_label_issues(run_dir, method='knn')
        {'method': 'knn_vote', 'k': 10, 'key': 'feat_3', 'n_issues': 27,
         'n_samples': 540, 'issue_rate': 0.05}
    """
    run = Run(run_dir)
    key = run.key(key)
    method = _method(run, method, logger)
    if len(run) < 3:
        raise UserError(f'{run_dir} has {len(run)} samples; finding label '
                        'errors needs at least 3')
    if method == 'cleanlab':
        _log(logger, 'info', 'label_issues: cleanlab on the classification '
             f"head's predictions; {TRAIN_DATA_NOTE}")
        quality, issue, _ = _cleanlab(run)
        used_k = None
    else:
        if int(k) != k or k < 1:
            raise UserError(f'k must be a positive integer, got {k}')
        used_k = min(int(k), len(run) - 1)
        stored = _neighbors(run, key, used_k, show_progress)
        quality, issue, _ = knn_vote(run.labels,
                                     stored['indices'][:, :used_k])
    add_columns(run_dir, {QUALITY: [round(float(q), 6) if q == q else ''
                                    for q in quality],
                          ISSUE: [bool(i) for i in issue]})
    n_issues = int(issue.sum())
    section = dict(method='cleanlab' if method == 'cleanlab' else
                   'knn_vote', k=used_k, key=key, n_issues=n_issues,
                   n_samples=len(run),
                   issue_rate=round(n_issues / len(run), 6))
    update_manifest(run_dir, {'label_issues': section})
    return section


def suspects(run: Union[str, Run]) -> List[Dict[str, object]]:
    """The suspected label errors of a run, lowest quality first.

    Args:
        run (str | Run): A run on which :func:`find_label_issues` ran.

    Returns:
        list[dict]: One per suspect: ``position``, :data:`REVIEW_COLUMNS`.

    Raises:
        UserError: The run has no ``label_issue`` column.

    Examples:
        >>> suspects(run_dir)[0]['label_quality']
        0.0012
    """
    run = run if isinstance(run, Run) else Run(run)
    if ISSUE not in run.table:
        raise UserError(f'{run.path} has no {ISSUE} column: run '
                        f'tools/label_issues.py {run.path} first')
    flagged = np.flatnonzero(run.table[ISSUE] == 1)
    quality = run.table[QUALITY]
    flagged = flagged[np.argsort(quality[flagged], kind='stable')]
    space = run.label_space
    vote = _vote_labels(run)
    paths = run.image_paths
    text = run.text_table()
    rows = []
    for p in flagged.tolist():
        rows.append(dict(
            position=p, index=int(run.table['index'][p]) if 'index' in
            run.table else p, img_path=paths[p],
            gt_label=int(run.labels[p]),
            gt_class=space.dataset_name(int(run.labels[p])),
            pred_class=text['pred_class'][p] if 'pred_class' in text
            else '', label_quality=float(quality[p]),
            vote_class=space.dataset_name(int(vote[p]))
            if vote is not None else ''))
    return rows


def _vote_labels(run: Run) -> Optional[np.ndarray]:
    """The neighbourhood's plurality label, where neighbours are stored."""
    stored = run.neighbors()
    section = run.manifest.get('label_issues') or {}
    if stored is None:
        return None
    k = min(int(section.get('k') or DEFAULT_K), stored['indices'].shape[1])
    return knn_vote(run.labels, stored['indices'][:, :k])[2]


def write_review(run_dir: str, out: Optional[str] = None
                 ) -> Tuple[str, str, int]:
    """Write the suspects as a CSV and as an annotation file to review.

    Args:
        run_dir (str): A run on which :func:`find_label_issues` ran.
        out (str, optional): The annotation file (``relative/path label``
            lines, relative to the run's ``data_prefix``, with the GIVEN
            labels: correct them and train on it); the CSV is written next
            to it as ``<stem>.csv``. Defaults to
            ``<run_dir>/label_issues.txt``.

    Returns:
        tuple: Paths of the CSV and of the annotation file, and the number
        of suspects.

    Examples:
        >>> write_review(run_dir, 'review.txt')
        ('review.csv', 'review.txt', 27)
    """
    from tsneviz.data.paths import run_data_prefix
    from tsneviz.exporters.splits import write_annotation

    run = Run(run_dir)
    rows = suspects(run)
    out = out or osp.join(run_dir, 'label_issues.txt')
    if osp.isdir(out):
        raise UserError(f'--out {out} is a folder; give a file name such '
                        'as review.txt')
    folder = osp.dirname(osp.abspath(out))
    if not osp.isdir(folder):
        raise UserError(f'folder of --out not found: {folder}')
    csv_path = osp.splitext(out)[0] + '.csv'
    if osp.abspath(csv_path) == osp.abspath(out):
        raise UserError(f'--out {out} must not end in .csv: the CSV is '
                        'written next to it')
    write_table(csv_path, {c: [r[c] for r in rows] for c in REVIEW_COLUMNS})
    # append=False: a fresh list (written atomically), not added to an
    # older review
    write_annotation(out, [r['img_path'] for r in rows],
                     [r['gt_label'] for r in rows], run_data_prefix(run))
    return csv_path, out, len(rows)
