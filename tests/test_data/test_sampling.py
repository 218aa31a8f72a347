"""tsneviz.data.sampling: per-class sampling laws."""
from collections import defaultdict

import numpy as np
import pytest

from tsneviz.data.sampling import resolve_class_idx, sample_per_class
from tsneviz.errors import UserError


def reference_first(labels, class_idx, max_num_samples):
    """mmpretrain vis_tsne.py's selection loop, as its source reads."""
    picked, counter = [], defaultdict(int)
    for i, gt in enumerate(labels):
        if gt in class_idx and counter[gt] < max_num_samples:
            picked.append(i)
            counter[gt] += 1
    return picked


@pytest.mark.parametrize('case', range(40))
def test_laws_hold_on_random_label_arrays(case):
    rng = np.random.default_rng(case)
    labels = rng.integers(0, 12, size=rng.integers(1, 400))
    class_idx = sorted(rng.choice(12, size=rng.integers(1, 12),
                                  replace=False).tolist())
    cap = int(rng.integers(1, 30))
    for mode in ('random', 'first'):
        picked = sample_per_class(labels, class_idx, cap, mode, seed=case)
        counts = np.bincount(labels[picked], minlength=12)
        # never more than the cap per class, only the chosen classes
        assert counts.max(initial=0) <= cap
        assert set(labels[picked]) <= set(class_idx)
        # every chosen class gets min(available, cap) samples
        for cls in class_idx:
            assert counts[cls] == min(cap, int((labels == cls).sum()))
        assert np.all(np.diff(picked) > 0)  # sorted, no duplicates
    assert sample_per_class(labels, class_idx, cap, 'first').tolist() == \
        reference_first(labels.tolist(), class_idx, cap)


def test_random_is_seeded_and_not_just_the_first():
    labels = np.repeat(np.arange(3), 100)
    a = sample_per_class(labels, [0, 1, 2], 10, 'random', seed=1)
    b = sample_per_class(labels, [0, 1, 2], 10, 'random', seed=1)
    c = sample_per_class(labels, [0, 1, 2], 10, 'random', seed=2)
    first = sample_per_class(labels, [0, 1, 2], 10, 'first')
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()
    assert a.tolist() != first.tolist()


def test_resolve_class_idx_follows_the_reference():
    assert resolve_class_idx(None, 20, 10) == list(range(10))
    assert resolve_class_idx(None, 3, 10) == [0, 1, 2]
    assert resolve_class_idx(None, 4, None) == [0, 1, 2, 3]
    # explicit classes win over max_num_class, duplicates dropped
    assert resolve_class_idx([5, 2, 5], 1, 10) == [5, 2]


@pytest.mark.parametrize('call, needle', [
    (lambda: resolve_class_idx([3, 10], 20, 10), '--class-idx 10'),
    (lambda: resolve_class_idx([-1], 20, 10), 'out of range'),
    (lambda: resolve_class_idx(None, 0, 10), '--max-num-class'),
    (lambda: sample_per_class(np.zeros(3), [0], 0), '--max-num-samples'),
    (lambda: sample_per_class(np.zeros(3), [0], 1, 'best'), 'sampling'),
])
def test_bad_input_is_one_line(call, needle):
    with pytest.raises(UserError, match=needle) as err:
        call()
    assert '\n' not in str(err.value)
