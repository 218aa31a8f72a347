import json

import numpy as np
import pytest
from sklearn import manifold
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from tsneviz import metrics
from tsneviz.errors import UserError
from tsneviz.metrics import knn_accuracy, separation_metrics, trustworthiness


@pytest.fixture(scope='module')
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope='module')
def jittered_digits(digits):
    """Digits pixels without distance ties.

    Integer pixels give many equal distances, which sklearn ranks one way
    in X and kneighbors another way in Y, so even Y = X scores 0.99999.
    """
    X, _ = digits
    return X + np.random.default_rng(0).normal(scale=1e-3, size=X.shape)


@pytest.fixture
def tw_calls(monkeypatch):
    """Record the arrays sklearn's trustworthiness is called with."""
    calls = []
    real = manifold.trustworthiness

    def spy(X, Y, **kwargs):
        calls.append((np.array(X), np.array(Y)))
        return real(X, Y, **kwargs)

    monkeypatch.setattr(manifold, 'trustworthiness', spy)
    return calls


def test_knn_accuracy_digits_pixels_separate_classes(digits):
    X, y = digits
    assert knn_accuracy(X, y, k=10) > 0.9


def test_knn_accuracy_shuffled_labels_is_chance(digits):
    X, y = digits
    shuffled = np.random.default_rng(0).permutation(y)
    # 10 balanced classes: chance 0.1, standard error ~0.007 for N=1797.
    assert 0.05 < knn_accuracy(X, shuffled, k=10) < 0.16


@pytest.mark.parametrize('k', [1, 3])
def test_knn_accuracy_excludes_the_point_itself(k):
    # Every label occurs once, so only the point itself could vote right.
    X = np.random.default_rng(0).normal(size=(20, 4))
    assert knn_accuracy(X, np.arange(20), k=k) == 0.0


def test_knn_tie_goes_to_nearest_neighbour():
    # k=2, every vote is 1:1. Nearest-neighbour tie-breaking gets points
    # 0 and 1 right (2/3); smallest-label tie-breaking would get none.
    X = np.array([[0.0], [1.0], [-3.0]])
    assert knn_accuracy(X, [2, 2, 1], k=2) == pytest.approx(2 / 3)


def test_knn_majority_beats_nearest():
    # Point 0's nearest neighbour says 5 but two of three say 7; only
    # point 1 (label 5, surrounded by 7s) is misclassified.
    X = np.array([[0.0], [1.0], [2.0], [2.5]])
    assert knn_accuracy(X, [7, 5, 7, 7], k=3) == 0.75


@pytest.mark.parametrize('n, k', [(5, 5), (3, 10)])
def test_knn_accuracy_needs_more_samples_than_k(n, k):
    X = np.zeros((n, 2))
    with pytest.raises(UserError, match=f'k {k} is larger than the {n - 1} '
                       'other samples'):
        knn_accuracy(X, np.zeros(n, int), k=k)


def test_knn_accuracy_rejects_bad_arguments():
    with pytest.raises(UserError, match='positive integer'):
        knn_accuracy(np.zeros((5, 2)), np.zeros(5, int), k=0)
    with pytest.raises(ValueError, match='labels must have shape'):
        knn_accuracy(np.zeros((5, 2)), np.zeros(4, int), k=2)


def test_trustworthiness_identity_is_one(jittered_digits):
    X = jittered_digits
    assert trustworthiness(X, X) == pytest.approx(1.0)


def test_trustworthiness_random_embedding_is_clearly_lower(digits):
    X, _ = digits
    noise = np.random.default_rng(0).normal(size=(len(X), 2))
    pca = PCA(2).fit_transform(X)
    t_noise, t_pca = trustworthiness(X, noise), trustworthiness(X, pca)
    assert t_noise < 0.6
    assert t_noise < t_pca - 0.2


def test_trustworthiness_subsample_respects_max_samples(jittered_digits,
                                                        tw_calls):
    X = jittered_digits
    # Identity stays exactly 1.0 only if X and Y keep the same rows.
    assert trustworthiness(X, X, max_samples=300, seed=1) == pytest.approx(1.0)
    trustworthiness(X, X, max_samples=300, seed=2)
    few = X[:400]
    trustworthiness(few, few, max_samples=None)
    trustworthiness(few, few, max_samples=400)
    (x1, y1), (x2, _), (x_all, _), (x_cap, _) = tw_calls
    assert x1.shape == (300, 64) and y1.shape == (300, 64)
    assert np.array_equal(x1, y1)
    # Subsampled rows are real rows of X, and the seed matters.
    rows = {tuple(r) for r in X}
    assert {tuple(r) for r in x1} <= rows
    assert not np.array_equal(x1, x2)
    assert x_all.shape == x_cap.shape == few.shape


def test_trustworthiness_is_deterministic_per_seed(digits):
    X, _ = digits
    Y = np.random.default_rng(0).normal(size=(len(X), 2))
    first = trustworthiness(X, Y, max_samples=400, seed=3)
    assert trustworthiness(X, Y, max_samples=400, seed=3) == first


def test_trustworthiness_rejects_too_few_rows(digits):
    X, _ = digits
    with pytest.raises(ValueError, match='needs more than 10 samples'):
        trustworthiness(X, X, n_neighbors=5, max_samples=10)
    with pytest.raises(ValueError, match='same rows'):
        trustworthiness(X, X[:-1])


def test_separation_metrics_digits(digits, tw_calls):
    X, y = digits
    result = separation_metrics(X, PCA(2).fit_transform(X), y, k=10)
    assert set(result) == {'knn_accuracy_features', 'knn_accuracy_embedding',
                           'trustworthiness', 'n_samples_trustworthiness',
                           'knn_k', 'trustworthiness_k'}
    assert (result['knn_k'], result['trustworthiness_k']) == (10, 10)
    for key in ('knn_accuracy_features', 'knn_accuracy_embedding',
                'trustworthiness'):
        assert type(result[key]) is float
    assert type(result['n_samples_trustworthiness']) is int
    assert type(result['knn_k']) is int
    assert json.loads(json.dumps(result)) == result
    assert result['knn_accuracy_features'] > 0.9
    # Two PCA components lose much of the class structure.
    assert (result['knn_accuracy_embedding']
            < result['knn_accuracy_features'] - 0.2)
    assert 0.6 < result['trustworthiness'] < 1.0
    assert result['n_samples_trustworthiness'] == len(X) == len(tw_calls[0][0])


def test_separation_metrics_reports_subsample_size(digits, tw_calls,
                                                   monkeypatch):
    X, y = digits
    monkeypatch.setattr(metrics, 'TRUSTWORTHINESS_MAX_SAMPLES', 500)
    result = separation_metrics(X, X[:, :3], y, k=5, seed=4)
    assert result['n_samples_trustworthiness'] == 500
    assert len(tw_calls[0][0]) == 500


def test_separation_metrics_errors(digits):
    X, y = digits
    with pytest.raises(ValueError, match='same rows'):
        separation_metrics(X, X[:-1, :2], y)
    with pytest.raises(ValueError, match='at least 3 samples'):
        separation_metrics(X[:2], X[:2, :2], y[:2], k=10)


def test_separation_metrics_shrink_neighbourhoods_for_small_runs(digits):
    X, y = digits
    result = separation_metrics(X[:20], X[:20, :2], y[:20], k=10)
    assert (result['knn_k'], result['trustworthiness_k']) == (10, 9)
    small = separation_metrics(X[:6], X[:6, :2], y[:6], k=10)
    assert (small['knn_k'], small['trustworthiness_k']) == (5, 2)
    assert 0 <= small['trustworthiness'] <= 1


@pytest.mark.parametrize('metric', ['euclidean', 'cosine'])
def test_nearest_neighbors_match_brute_force_in_any_chunking(metric):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 20))
    X[7] = X[3]  # an exact duplicate: row 3 is 7's nearest, and not itself
    if metric == 'cosine':
        unit = X / np.linalg.norm(X, axis=1, keepdims=True)
        dist = 1 - unit @ unit.T
    else:
        dist = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    done = []
    idx, d = metrics.nearest_neighbors(X, 4, metric, chunk=7,
                                       progress=done.append)
    assert idx.shape == d.shape == (50, 4)
    assert not (idx == np.arange(50)[:, None]).any()
    assert idx[7, 0] == 3 and idx[3, 0] == 7 and d[7, 0] < 1e-12
    np.testing.assert_allclose(d, np.sort(dist, axis=1)[:, :4], atol=1e-9)
    assert sum(done) == 50 and len(done) == 8
    # some rows only: the same answer as those rows of the whole
    some, some_d = metrics.nearest_neighbors(X, 4, metric, rows=[7, 40])
    np.testing.assert_array_equal(some, idx[[7, 40]])
    with pytest.raises(UserError, match='k 50 is larger than the 49'):
        metrics.nearest_neighbors(X, 50)


def test_silhouette_score_is_the_reports_overall_figure(digits):
    X, y = digits
    by_class = metrics.silhouette_by_class(X, X[:, :2], y, max_samples=600)
    score = metrics.silhouette_score(X, y, max_samples=600)
    assert score == pytest.approx(by_class['overall_features'])
    assert by_class['n_samples'] < len(y)  # the subsample was used
    from sklearn.metrics import silhouette_score as sk_score
    small = X[:300], y[:300]
    assert metrics.silhouette_score(*small) == pytest.approx(
        sk_score(*small))
    assert metrics.silhouette_score(X[:5], [0] * 5) is None
