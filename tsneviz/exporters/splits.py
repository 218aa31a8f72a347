"""Train/val splits of a run, stratified, with near-duplicates kept together.

A validation set says little when it holds near-copies of training images,
or when a mode of the data (a cluster of the feature map) is missing from
it. :func:`make_splits` fixes both: every stratum (cluster or class) gets
its share of ``val``, and near-duplicate images (tiny feature distance)
are grouped and assigned as a whole to one side.

Outputs (in ``out_dir``, default ``<run_dir>/splits/``):

- ``train.txt`` and ``val.txt``: mmpretrain annotation files, one
  ``relative/path label`` line per sample, sorted by dataset index; paths
  are relative to the run's ``data_prefix`` (``run.json``), so
  ``CustomDataset(data_prefix=<data_prefix>, ann_file='train.txt')`` reads
  them (absolute paths when the run recorded no ``data_prefix``);
- ``duplicates.csv``: the near-duplicate pairs found, columns ``index_a``,
  ``index_b`` (dataset indices), ``img_path_a``, ``img_path_b``,
  ``distance`` (cosine), ``group`` and ``split``.
"""
import os
import os.path as osp
import sys
from collections import Counter
from typing import Dict, Optional, Tuple, Union

import numpy as np

from tsneviz.data.paths import run_data_prefix, run_image_paths
from tsneviz.errors import UserError
from tsneviz.registry import EXPORTERS
from tsneviz.rundir import (
    CLUSTER_COLUMN,
    DUPLICATES,
    SPLITS,
    Run,
    update_manifest,
    write_table,
    write_text,
)

__all__ = ['DUP_AUTO_FRACTION', 'find_duplicates', 'make_splits',
           'annotation_path', 'write_annotation']

#: ``dup_threshold='auto'`` is this fraction of the median distance from a
#: sample to its nearest other sample. Distinct images of one class sit
#: close in a trained model's feature space (on the digits demo the closest
#: distinct pair is at cosine 0.0016, the median nearest at 0.008), so an
#: absolute cut that catches re-encoded copies in one model flags distinct
#: images in another; a tenth of the typical nearest distance scales with
#: the model and keeps clear of distinct pairs, while copies sit near 0.
DUP_AUTO_FRACTION = 0.1
_CHUNK = 2048


def _auto_threshold(nearest: np.ndarray) -> float:
    """:data:`DUP_AUTO_FRACTION` of the median nearest-other distance."""
    return float(DUP_AUTO_FRACTION * np.median(nearest))


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.maximum(norms, np.finfo(np.float32).tiny)


def _candidate_distances(features: np.ndarray, candidates: np.ndarray,
                         show_progress: bool) -> np.ndarray:
    """Cosine distance from each row to each of its candidate rows."""
    from tsneviz.progress import progress_bar

    n, k = candidates.shape
    out = np.empty((n, k), dtype=np.float32)
    # a chunk of rows and their k candidates: rows x k x C floats
    chunk = max(1, (64 << 20) // max(1, 4 * k * features.shape[1]))
    with progress_bar('Near-duplicates', n, show_progress) as bar:
        for start in range(0, n, chunk):
            rows = slice(start, min(start + chunk, n))
            own = _unit(features[rows])
            other = _unit(features[candidates[rows].ravel()]).reshape(
                len(own), k, -1)
            out[rows] = 1 - np.einsum('ic,ikc->ik', own, other)
            bar(advance=len(own))
    return np.maximum(out, 0)


def _pairs_from_candidates(features, candidates, threshold, show_progress):
    """Pairs within ``threshold`` among each row's candidate neighbours.

    A run's shared neighbour graph holds each sample's nearest samples, and
    a near-duplicate is by definition among them, so checking those
    candidates (N x k exact cosine distances on the features) finds the
    same pairs as a search of all N x N at scale. Groups larger than k + 1
    are still joined, through the pairs inside them.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    distances = _candidate_distances(features, candidates, show_progress)
    own = np.arange(len(candidates))[:, None]
    distances[candidates == own] = np.inf  # never the row itself
    if threshold is None:
        threshold = _auto_threshold(distances.min(axis=1))
    hit_rows, hit_cols = np.nonzero(distances <= threshold)
    a, b = hit_rows, candidates[hit_rows, hit_cols]
    pairs = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)
    pairs, first = np.unique(pairs, axis=0, return_index=True)
    return pairs, distances[hit_rows, hit_cols][first], threshold


def _pairs_exhaustive(features, threshold, show_progress):
    """Pairs within ``threshold`` by a radius search of all rows."""
    from sklearn.neighbors import NearestNeighbors

    from tsneviz.metrics import nearest_neighbors
    from tsneviz.progress import progress_bar

    if threshold is None:
        _, nearest = nearest_neighbors(features, 1, 'cosine')  # not itself
        threshold = _auto_threshold(nearest[:, 0])
    nn = NearestNeighbors(metric='cosine', algorithm='brute').fit(features)
    n = len(features)
    found_a, found_b, found_d = [], [], []
    with progress_bar('Near-duplicates', n, show_progress) as bar:
        for start in range(0, n, _CHUNK):
            rows = np.arange(start, min(start + _CHUNK, n))
            dists, neighbours = nn.radius_neighbors(features[rows],
                                                    radius=threshold)
            for row, dist, idx in zip(rows, dists, neighbours):
                later = idx > row  # each pair once, never the row itself
                found_a.append(np.full(later.sum(), row))
                found_b.append(idx[later])
                found_d.append(dist[later])
            bar(advance=len(rows))
    pairs = np.stack([np.concatenate(found_a), np.concatenate(found_b)],
                     axis=1).astype(np.int64) if n else np.zeros((0, 2), int)
    distances = np.maximum(np.concatenate(found_d), 0) if n else np.zeros(0)
    return pairs, distances, threshold


def find_duplicates(features: np.ndarray,
                    threshold: Union[float, str] = 'auto',
                    show_progress: bool = False,
                    candidates: Optional[np.ndarray] = None
                    ) -> Tuple[np.ndarray, np.ndarray, float]:
    """Pairs of rows whose cosine distance is at most ``threshold``.

    Args:
        features (np.ndarray): (N, C) features.
        threshold (float | str): Cosine distance (1 - cosine similarity),
            or ``'auto'``: :data:`DUP_AUTO_FRACTION` times the median
            nearest-neighbour distance. Defaults to ``'auto'``.
        show_progress (bool): Draw a progress bar. Defaults to False.
        candidates (np.ndarray, optional): (N, k) nearest rows of each row,
            e.g. the run's shared neighbour graph: only these pairs are
            checked (linear in N). None searches all pairs (quadratic).

    Returns:
        tuple: ``pairs`` (P, 2) int row positions with ``a < b``,
        ``distances`` (P,) and the threshold used.

    Examples:
        >>> pairs, dist, used = find_duplicates(feats, 1e-4)
    """
    if isinstance(threshold, str):
        if threshold != 'auto':
            raise UserError(f"dup threshold must be a number or 'auto', got "
                            f'{threshold!r}')
        threshold = None
    else:
        threshold = float(threshold)
        if not threshold >= 0:
            raise UserError(f'dup threshold must be >= 0, got {threshold}')
    if candidates is not None and len(features):
        pairs, distances, threshold = _pairs_from_candidates(
            features, candidates, threshold, show_progress)
    else:
        pairs, distances, threshold = _pairs_exhaustive(
            features, threshold, show_progress)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order], distances[order], threshold


def _groups(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components of the duplicate graph: a group id per row."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])),
                       shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def _targets(sizes: Dict, val_ratio: float, rng) -> Dict:
    """Val count per stratum: proportional, largest-remainder rounding.

    The total is ``round(N * val_ratio)``; leftover units go to the strata
    with the largest fractional shares, ties broken at random (seeded).
    Then a stratum of two or more samples keeps at least one on each side,
    so every stratum is present in val; each count stays within 1 of its
    exact share.
    """
    strata = sorted(sizes, key=str)
    exact = np.array([sizes[s] * val_ratio for s in strata])
    base = np.floor(exact).astype(int)
    left = int(round(sum(sizes.values()) * val_ratio)) - int(base.sum())
    fraction = exact - base
    order = np.lexsort((rng.random(len(strata)), -fraction))
    base[order[:max(left, 0)]] += 1
    targets = {}
    for s, t in zip(strata, base):
        if sizes[s] >= 2:
            t = min(max(t, 1), sizes[s] - 1)
        targets[s] = int(t)
    return targets


def annotation_path(img_path: str, data_prefix: Optional[str]) -> str:
    """``img_path`` relative to ``data_prefix`` (POSIX separators).

    Absolute when there is no prefix, so that mmpretrain's join of prefix
    and path still finds the file.
    """
    if not data_prefix or not osp.isabs(img_path):
        return img_path
    return osp.relpath(img_path, data_prefix).replace(os.sep, '/')


def _image_key(path: str, data_prefix: Optional[str]) -> str:
    """The file an annotation path names, in one spelling.

    With the prefix ``/data/digits/val``, ``0/1.png``, ``./0/1.png`` and
    ``/data/digits/val/0/1.png`` are one image; comparing the text of lines
    would list it twice.
    """
    if data_prefix and not osp.isabs(path):
        path = osp.join(data_prefix, path)
    return osp.normpath(path)


def write_annotation(path: str, img_paths, labels,
                     data_prefix: Optional[str], append: bool = False
                     ) -> int:
    """Write (or append) ``relative/path label`` lines, atomically.

    Args:
        path (str): Annotation file.
        img_paths (Iterable[str]): Image paths as in ``samples.csv``.
        labels (Iterable[int]): Class ids.
        data_prefix (str, optional): Folder the paths are made relative to.
        append (bool): Keep the file's lines and add the new ones, skipping
            images it already lists, whatever the spelling of their path
            (relative or absolute, ``./``, ``..``). An image listed under
            another label keeps it, with a warning. Defaults to False.

    Returns:
        int: Lines added.
    """
    lines = [(annotation_path(p, data_prefix), int(y))
             for p, y in zip(img_paths, labels)]
    for rel, _ in lines:
        # CustomDataset splits on the last space and reads one line each
        if '\n' in rel or '\r' in rel:
            raise UserError(f'cannot write an image path with a line break '
                            f'into an annotation file: {rel!r}')
    existing = []
    if append and osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            existing = f.read().splitlines()
    seen = {}  # image key -> its label, as text
    for line in existing:
        rel, _, label = line.strip().rpartition(' ')
        if rel:
            seen.setdefault(_image_key(rel, data_prefix), label)
    added, relabelled = [], []
    for rel, label in lines:
        key = _image_key(rel, data_prefix)
        if key not in seen:
            added.append(f'{rel} {label}')
            seen[key] = str(label)
        elif seen[key] != str(label):
            relabelled.append((rel, seen[key]))
    if relabelled:
        rel, old = relabelled[0]
        print(f'warning: {len(relabelled)} images are already in {path} '
              f'under another label (e.g. {rel} as {old}); left as they '
              'are', file=sys.stderr)
    text = ''.join(f'{line}\n' for line in existing + added)
    write_text(path, text)
    return len(added)


def _strata(run: Run, by: str) -> np.ndarray:
    if by == 'class':
        return run.labels
    if CLUSTER_COLUMN not in run.table:
        raise UserError(f'{run.path} has no cluster column in samples.csv; '
                        'run tools/cluster.py on it first, or split with '
                        '--by class')
    clusters = run.table[CLUSTER_COLUMN]
    if clusters.dtype == object:
        return np.array([str(c) for c in clusters], dtype=object)
    # an unclustered sample (empty cell) is a stratum of its own
    return np.where(np.isnan(clusters), -1, clusters).astype(np.int64)


@EXPORTERS.register_module(name='splits')
def make_splits(run_dir: str, val_ratio: float, by: str = 'cluster',
                dup_threshold: Union[float, str] = 'auto', seed: int = 0,
                out_dir: Optional[str] = None, key: Optional[str] = None,
                show_progress: bool = False) -> dict:
    """Write a stratified train/val split of a run's samples.

    Every stratum (a cluster of ``samples.csv``'s ``cluster`` column, or a
    ground-truth class) is represented in val in proportion: its val count
    is within 1 of ``val_ratio`` times its size (largest-remainder rounding,
    ties broken by ``seed``; a stratum of two or more samples has at least
    one on each side). Near-duplicates, pairs of samples whose features are
    within ``dup_threshold`` cosine distance, are grouped (connected
    components, so chains of copies form one group) and each group goes
    whole to train or to val: a copy of a training image in val would
    inflate the val score.

    ``train.txt`` and ``val.txt`` are mmpretrain annotation files with
    ``relative/path label`` lines, relative to the run's ``data_prefix``
    (``run.json``): ``CustomDataset(data_prefix=<data_prefix>,
    ann_file=<out_dir>/train.txt)`` reads them.

    Args:
        run_dir (str): A complete run directory.
        val_ratio (float): Share of samples in val, in (0, 1).
        by (str): ``'cluster'`` (needs the ``cluster`` column, written by
            ``tools/cluster.py``) or ``'class'``. Defaults to ``'cluster'``.
        dup_threshold (float | str): Cosine distance (1 - cosine
            similarity of the features) at or below which two samples are
            near-duplicates; ``'auto'`` is :data:`DUP_AUTO_FRACTION` (0.1)
            times the median distance of a sample to its nearest other
            sample; 0 groups only identical features. Defaults to
            ``'auto'``.
        seed (int): Seed of the assignment. Defaults to 0.
        out_dir (str, optional): Where to write. Defaults to
            ``<run_dir>/splits``.
        key (str, optional): Feature key; default the run's first.
        show_progress (bool): Draw progress bars. Defaults to False.

    Returns:
        dict: ``train``, ``val``, ``duplicates`` (file paths), ``n_train``,
        ``n_val``, ``n_duplicate_pairs``, ``n_duplicate_groups`` (groups of
        two or more), ``dup_threshold`` (the value used), and ``strata``:
        per stratum ``{'n': ..., 'val': ..., 'expected': ...}``.

    Examples:
        >>> result = make_splits(run_dir, 0.2, by='class')
        >>> result['n_val'], result['n_duplicate_pairs']
        (60, 0)
    """
    try:
        val_ratio = float(val_ratio)
    except (TypeError, ValueError):
        raise UserError(f'val ratio must be a number in (0, 1), got '
                        f'{val_ratio!r}') from None
    if not 0 < val_ratio < 1:
        raise UserError(f'val ratio must be in (0, 1), got {val_ratio:g}')
    if by not in ('cluster', 'class'):
        raise UserError(f"split by 'cluster' or 'class', not {by!r}")
    run = Run(run_dir)
    strata = _strata(run, by)
    labels = run.labels
    if (labels < 0).any():
        raise UserError(f'{int((labels < 0).sum())} samples have no '
                        'ground-truth label; annotation files need one')
    features = run.features(key)
    n = len(features)
    rng = np.random.default_rng(seed)

    # the run's neighbour graph, where it has one, holds every sample's
    # nearest samples: the candidates of near-duplicates
    graph = run.neighbors(key)
    pairs, pair_dist, threshold = find_duplicates(
        features, dup_threshold, show_progress,
        candidates=None if graph is None else graph['indices'])
    group = _groups(n, pairs)
    members: Dict[int, list] = {}
    for position, g in enumerate(group):
        members.setdefault(int(g), []).append(position)
    # A group spanning strata counts where most of its members are.
    group_stratum = {g: Counter(strata[m].tolist()).most_common(1)[0][0]
                     for g, m in members.items()}

    sizes = Counter(strata.tolist())
    targets = _targets(dict(sizes), val_ratio, rng)
    in_val = np.zeros(n, bool)
    by_stratum: Dict[object, list] = {}
    for g in sorted(members):
        by_stratum.setdefault(group_stratum[g], []).append(g)
    for s in sorted(by_stratum, key=str):
        units = by_stratum[s]
        taken = 0
        for u in rng.permutation(len(units)):
            group_members = members[units[u]]
            size = len(group_members)
            # take a group when it brings val closer to the target
            if abs(taken + size - targets.get(s, 0)) < \
                    abs(taken - targets.get(s, 0)):
                in_val[group_members] = True
                taken += size

    if out_dir is None:
        out_dir = osp.join(run_dir, SPLITS)
    os.makedirs(out_dir, exist_ok=True)
    prefix = run_data_prefix(run)
    paths = np.array(run_image_paths(run), dtype=object)
    dataset_index = run.table['index'].astype(np.int64)
    order = np.argsort(dataset_index, kind='stable')
    files = {}
    for name, mask in (('train', ~in_val), ('val', in_val)):
        rows = order[mask[order]]
        files[name] = osp.join(out_dir, f'{name}.txt')
        write_annotation(files[name], paths[rows], labels[rows], prefix)

    a, b = pairs[:, 0], pairs[:, 1]
    files['duplicates'] = write_table(
        osp.join(out_dir, DUPLICATES),
        dict(index_a=dataset_index[a], index_b=dataset_index[b],
             img_path_a=paths[a], img_path_b=paths[b],
             distance=pair_dist.astype(float), group=group[a],
             split=np.where(in_val[a], 'val', 'train')))

    per_stratum = {}
    for s in sorted(sizes, key=str):
        mask = strata == s
        per_stratum[str(s)] = dict(n=int(mask.sum()),
                                   val=int(in_val[mask].sum()),
                                   expected=round(mask.sum() * val_ratio, 3))
    n_groups = sum(len(m) > 1 for m in members.values())
    result = dict(files, n_train=int((~in_val).sum()),
                  n_val=int(in_val.sum()), n_duplicate_pairs=len(pairs),
                  n_duplicate_groups=int(n_groups),
                  dup_threshold=threshold, strata=per_stratum)

    section = dict(out_dir=osp.abspath(out_dir), by=by, val_ratio=val_ratio,
                   seed=seed, key=run.key(key), dup_metric='cosine',
                   dup_threshold=threshold,
                   dup_threshold_rule=(f'{DUP_AUTO_FRACTION} x median '
                                       'nearest-neighbour distance'
                                       if dup_threshold == 'auto'
                                       else 'given'),
                   n_train=result['n_train'], n_val=result['n_val'],
                   n_duplicate_pairs=len(pairs),
                   n_duplicate_groups=int(n_groups), data_prefix=prefix)
    inside = [osp.relpath(p, run_dir) for p in
              (files['train'], files['val'], files['duplicates'])]
    inside = [p for p in inside if not p.startswith('..')]
    update_manifest(run_dir, {'splits': section}, inside)
    return result
