"""UMAP and PCA reducers through the same registry as t-SNE."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

from tsneviz.errors import UserError
from tsneviz.metrics import knn_accuracy
from tsneviz.registry import REDUCERS


@pytest.fixture(scope='module')
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400].astype(np.float32), y[:400]


@pytest.mark.slow
def test_umap_separates_digits_and_repeats(digits):
    X, y = digits
    a = REDUCERS.build(dict(type='umap', n_neighbors=10)).fit_transform(X)
    b = REDUCERS.build(dict(type='umap', n_neighbors=10)).fit_transform(X)
    assert a.shape == (400, 2) and a.dtype == np.float32
    assert knn_accuracy(a, y) > 0.9
    np.testing.assert_allclose(a, b)  # seeded: a run repeats


def test_umap_caches_numba_on_disk(monkeypatch, tmp_path):
    import os

    from tsneviz.reduction.umap import _numba_cache_dir
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    assert _numba_cache_dir() == str(tmp_path / 'tsneviz' / 'numba')
    assert os.environ.get('NUMBA_CACHE_DIR')  # set before numba imports


def test_pca_is_the_linear_baseline(digits):
    X, y = digits
    reducer = REDUCERS.build(dict(type='pca', n_components=3))
    coords = reducer.fit_transform(X)
    from sklearn.decomposition import PCA
    expected = PCA(3, random_state=0).fit_transform(X)
    np.testing.assert_allclose(np.abs(coords), np.abs(expected), atol=1e-3)
    ratios = reducer.results()['explained_variance_ratio']
    assert len(ratios) == 3 and ratios[0] >= ratios[1] >= ratios[2]


@pytest.mark.parametrize('cfg, needle', [
    (dict(type='umap', n_neighbors=1), 'n_neighbors=1'),
    (dict(type='umap', min_dist=-1.0), 'min_dist=-1.0'),
    (dict(type='pca', n_components=5), 'n_components=5'),
    (dict(type='pca', perplexity=5.0), "unknown parameter 'perplexity'"),
])
def test_bad_parameters_are_one_line(cfg, needle):
    with pytest.raises(UserError, match=needle):
        REDUCERS.build(cfg)


def test_too_few_samples_for_the_neighbourhood():
    reducer = REDUCERS.build(dict(type='umap', n_neighbors=15))
    with pytest.raises(UserError, match='n_neighbors 15 is too large for 10'):
        reducer.fit_transform(np.random.rand(10, 4))
