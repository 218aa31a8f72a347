"""Putting runs side by side: the same samples, and maps in one frame.

t-SNE maps are only defined up to rotation, reflection, translation and
scale, so two maps of similar features can still look unrelated. Two ways
to line them up:

- :func:`procrustes_align`: rotate/reflect B's map onto A's
  (``scipy.linalg.orthogonal_procrustes``), scaled to A's spread and
  centred on A's centre; B's layout itself is unchanged.
- :func:`tsne_from_init`: run t-SNE again on B's features, starting from
  A's map, so both optimisations start from the same layout and what moves
  is what the features changed.

:func:`match_samples` pairs the rows of two runs of the same samples.
"""
from collections import Counter
from typing import List, Tuple

import numpy as np

from tsneviz.errors import UserError
from tsneviz.rundir import Run


# ---------------------------------------------------------------- samples
def match_samples(run_a: Run, run_b: Run) -> np.ndarray:
    """Rows of B in A's sample order.

    Samples are identified by ``(img_path, index)``.

    Args:
        run_a (Run): The reference run.
        run_b (Run): The run to match to it.

    Returns:
        np.ndarray: ``order`` such that row ``order[i]`` of B is sample
        ``i`` of A (the identity when both are in the same order).

    Raises:
        UserError: If the runs do not hold the same samples; the message
            says how many differ.
    """
    ids_a = _sample_ids(run_a)
    ids_b = _sample_ids(run_b)
    if ids_a == ids_b:
        return np.arange(len(ids_b))
    only_a = Counter(ids_a) - Counter(ids_b)
    only_b = Counter(ids_b) - Counter(ids_a)
    if only_a or only_b:
        raise UserError(
            f'{run_a.path} and {run_b.path} are not on the same samples: '
            f'{sum(only_a.values())} of A\'s {len(ids_a)} samples are not in '
            f'B and {sum(only_b.values())} of B\'s {len(ids_b)} are not in '
            'A; make both runs with the same dataset, --class-idx, '
            '--max-num-class, --max-num-samples, --sampling and --seed')
    # Same multiset in another order: pair the k-th occurrence of each id
    # in A with the k-th in B (a stable sort of both does exactly that).
    key_a = sorted(range(len(ids_a)), key=ids_a.__getitem__)
    key_b = sorted(range(len(ids_b)), key=ids_b.__getitem__)
    order = np.empty(len(ids_a), dtype=np.int64)
    order[key_a] = key_b
    return order


def _sample_ids(run: Run) -> List[Tuple[str, int]]:
    return [(str(p), int(i)) for p, i in
            zip(run.table['img_path'], run.table['index'])]


# ---------------------------------------------------------------- alignment
def _standardise(coords: np.ndarray) -> np.ndarray:
    """Centre and scale to unit Frobenius norm (scipy's procrustes does)."""
    centred = coords - coords.mean(axis=0)
    norm = np.linalg.norm(centred)
    return centred / norm if norm > 0 else centred


def disparity(reference, other) -> float:
    """Sum of squared differences of the two maps, both standardised.

    Each map is centred and scaled to unit Frobenius norm, as in
    ``scipy.spatial.procrustes``, and not rotated: 0 for the same layout,
    at most 4. Unlike SciPy's disparity (which also shrinks B by the
    least-squares scale, giving ``1 - s**2`` at the optimum where this
    gives ``2 - 2 * s``), both maps keep the same spread, as
    :func:`procrustes_align` and the plot do.

    Args:
        reference (array-like): Map A, shape (N, d).
        other (array-like): Map B of the same samples, shape (N, d).

    Returns:
        float: The disparity.
    """
    a = _standardise(np.asarray(reference, dtype=np.float64))
    b = _standardise(np.asarray(other, dtype=np.float64))
    return float(np.sum((a - b) ** 2))


def procrustes_align(reference, moving) -> Tuple[np.ndarray, dict]:
    """Rotate/reflect, scale and shift ``moving`` onto ``reference``.

    The rotation (or reflection) comes from
    ``scipy.linalg.orthogonal_procrustes`` on the centred maps. The scale
    makes B as spread out as A (equal root-mean-square distance to the
    centre): the least-squares scale (SciPy's second output over
    ``||B||^2``, also returned) shrinks B towards the centre in proportion
    to how badly the maps agree, which would hide B's layout exactly when
    it differs most. The shape of ``moving`` is kept: only the frame
    changes, and the disparity (:func:`disparity`) does not depend on the
    scale.

    Args:
        reference (array-like): Map A, shape (N, d).
        moving (array-like): Map B of the same samples, shape (N, d).

    Returns:
        tuple: ``(aligned, info)``: the aligned map (N, d) and ``rotation``
        (d x d), ``scale``, ``least_squares_scale``, ``reflection`` (bool).

    Examples:
        >>> a = np.random.default_rng(0).normal(size=(50, 2))
        >>> b = 3 * a[:, ::-1] + 7
        >>> aligned, info = procrustes_align(a, b)
        >>> bool(np.allclose(aligned, a)), info['reflection']
        (True, True)
    """
    from scipy.linalg import orthogonal_procrustes

    reference = np.asarray(reference, dtype=np.float64)
    moving = np.asarray(moving, dtype=np.float64)
    ref_mean = reference.mean(axis=0)
    ref_centred = reference - ref_mean
    centred = moving - moving.mean(axis=0)
    rotation, singular_sum = orthogonal_procrustes(centred, ref_centred)
    norm = float(np.linalg.norm(centred))
    scale = float(np.linalg.norm(ref_centred)) / norm if norm > 0 else 1.0
    aligned = scale * centred @ rotation + ref_mean
    return aligned, dict(
        rotation=rotation.tolist(), scale=scale,
        least_squares_scale=float(singular_sum / norm ** 2) if norm > 0
        else 1.0,
        reflection=bool(np.linalg.det(rotation) < 0))


def tsne_from_init(features: np.ndarray, init: np.ndarray,
                   params: dict) -> Tuple[np.ndarray, float]:
    """openTSNE on ``features`` starting from the map ``init``.

    The reducer is the run's own (schedule, gradient choice, PCA before the
    kNN search, early stop); only the start layout is A's map, which
    ``OpenTSNE`` rescales as openTSNE asks. The openTSNE backend is used
    even when the run used scikit-learn's.

    Args:
        features (np.ndarray): Features (N, C).
        init (np.ndarray): Start map (N, n_components).
        params (dict): t-SNE parameters (a run's ``tsne.params``); ones
            only scikit-learn understands are dropped.

    Returns:
        tuple: ``(embedding, kl_divergence)``.
    """
    from tsneviz.reduction import build_tsne
    from tsneviz.reduction.tsne import SKLEARN_ONLY

    params = {k: v for k, v in params.items() if k not in SKLEARN_ONLY}
    params['init'] = np.asarray(init, dtype=np.float64)
    params['n_components'] = init.shape[1]
    reducer = build_tsne('opentsne', **params)
    embedding = reducer.fit_transform(features)
    return embedding, float(reducer.kl_divergence_)

