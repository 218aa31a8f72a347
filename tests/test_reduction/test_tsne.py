"""tsneviz.reduction: real t-SNE runs, constraints, parameter flow."""
import functools

import numpy as np
import openTSNE
import pytest
import sklearn.manifold
from mmengine.config import Config
from sklearn.datasets import load_digits

from tsneviz.config import tsne_settings
from tsneviz.errors import UserError
from tsneviz.metrics import knn_accuracy
from tsneviz.reduction import build_tsne


@pytest.fixture(scope='module')
def digits():
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    keep = np.sort(rng.choice(len(X), 400, replace=False))
    return X[keep].astype(np.float32), y[keep]


def spy(monkeypatch, cls):
    """Record the keyword arguments a backend class is really built with."""
    seen = {}
    original = cls.__init__

    @functools.wraps(original)  # scikit-learn reads __init__'s signature
    def recording_init(self, *args, **kwargs):
        seen.update(kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(cls, '__init__', recording_init)
    return seen


@pytest.mark.parametrize('backend', ['opentsne', 'sklearn'])
def test_embeds_digits_into_separated_classes(backend, digits):
    X, y = digits
    reducer = build_tsne(backend, n_iter=500)
    progress = []
    coords = reducer.fit_transform(X, progress=lambda *a: progress.append(a))
    assert coords.shape == (len(X), 2) and coords.dtype == np.float32
    assert np.isfinite(coords).all()
    assert knn_accuracy(coords, y) > 0.9
    assert reducer.kl_divergence_ > 0
    assert progress and progress[-1][0] == progress[-1][1] == 500


def test_three_components_are_a_real_3d_embedding(digits):
    X, y = digits
    reducer = build_tsne('opentsne', n_components=3, n_iter=300)
    coords = reducer.fit_transform(X)
    assert coords.shape == (len(X), 3)
    assert coords[:, 2].std() > 0.1 * coords[:, 0].std()
    assert reducer.gradient_method_ == 'bh'  # FFT exists only up to 2-D


def test_config_and_cli_values_reach_opentsne(monkeypatch, digits):
    seen = spy(monkeypatch, openTSNE.TSNE)
    cfg = Config(dict(tsne=dict(perplexity=12.0, early_exaggeration=8.0,
                                init='random', metric='cosine')))
    settings = tsne_settings(cfg, {'perplexity': 9.0, 'learning_rate': 150.0,
                                   'init': None})
    assert settings.pop('backend', 'opentsne') == 'opentsne'
    build_tsne('opentsne', n_iter=300, seed=3, ints_in_interval=3.0,
               **settings).fit_transform(digits[0])
    assert seen['perplexity'] == 9.0            # CLI beats config
    assert seen['early_exaggeration'] == 8.0    # config beats default
    assert seen['initialization'] == 'random'   # CLI None = not given
    assert seen['learning_rate'] == 150.0
    assert seen['metric'] == 'cosine'
    assert seen['random_state'] == 3
    assert seen['ints_in_interval'] == 3.0


def test_reference_flags_reach_sklearn(monkeypatch, digits):
    seen = spy(monkeypatch, sklearn.manifold.TSNE)
    reducer = build_tsne('sklearn', n_iter=300, n_iter_without_progress=120,
                         learning_rate=200.0, init='random', perplexity=20.0,
                         early_exaggeration=10.0)
    reducer.fit_transform(digits[0])
    assert seen['max_iter'] == 300  # scikit-learn's name since 1.5
    assert 'n_iter' not in seen
    assert seen['n_iter_without_progress'] == 120
    assert (seen['learning_rate'], seen['init']) == (200.0, 'random')
    assert (seen['perplexity'], seen['early_exaggeration']) == (20.0, 10.0)


def test_kl_convergence_check_stops_the_normal_phase(digits):
    X = digits[0]
    patient = build_tsne('opentsne', n_iter=1000, n_iter_without_progress=-1)
    patient.fit_transform(X)
    assert patient.n_iter_ == 1000
    # a 50% gain per check counts as progress: it stalls at once
    eager = build_tsne('opentsne', n_iter=1000, n_iter_without_progress=50,
                       kl_tol=0.5)
    eager.fit_transform(X)
    assert 250 < eager.n_iter_ < 1000


def test_other_backends_parameter_is_ignored_with_a_warning(digits):
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('tsneviz_test_reduction')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        reducer = build_tsne('sklearn', negative_gradient_method='fft',
                             n_iter=250)
    finally:
        logger.removeHandler(handler)
    assert reducer.ignored_ == ['negative_gradient_method']
    assert any('ignores negative_gradient_method' in r.getMessage()
               for r in records)


@pytest.mark.parametrize('backend, params, needle', [
    ('opentsne', dict(n_iter=100), 'n_iter=100'),
    ('opentsne', dict(perplexity=-1.0), 'perplexity=-1.0'),
    ('opentsne', dict(n_components=4), 'n_components=4'),
    ('opentsne', dict(init='umap'), "one of 'pca', 'random', 'spectral'"),
    ('opentsne', dict(learning_rate='fast'), "learning_rate='fast'"),
    ('opentsne', dict(n_iter_without_progress=0), 'n_iter_without_progress'),
    ('opentsne', dict(colour='red'), "unknown parameter 'colour'"),
    ('sklearn', dict(init='spectral'), 'only available with the openTSNE'),
    ('umap', dict(), 'unknown t-SNE backend'),
])
def test_bad_parameters_name_the_value_and_what_is_valid(backend, params,
                                                         needle):
    with pytest.raises(UserError, match=needle) as err:
        build_tsne(backend, **params)
    assert '\n' not in str(err.value)


@pytest.mark.parametrize('backend', ['opentsne', 'sklearn'])
def test_perplexity_too_large_gives_both_numbers(backend):
    reducer = build_tsne(backend, perplexity=30.0)
    with pytest.raises(UserError, match='perplexity 30 is too large for 20 '
                       'samples'):
        reducer.fit_transform(np.random.rand(20, 8))


def test_pca_before_neighbours_only_when_it_reduces(digits):
    X = digits[0]
    reducer = build_tsne('opentsne', pca_dims=10)
    assert reducer.reduce_dims(X).shape == (len(X), 10)
    assert build_tsne('opentsne', pca_dims=0).reduce_dims(X).shape == X.shape
    assert build_tsne('opentsne', pca_dims=100).reduce_dims(X).shape == X.shape


def test_a_start_layout_array_is_used_and_checked(monkeypatch, digits):
    X, y = digits
    seen = spy(monkeypatch, openTSNE.TSNE)
    start = np.random.default_rng(0).normal(size=(len(X), 2))
    a = build_tsne('opentsne', n_iter=300, init=start).fit_transform(X)
    # the layout reaches openTSNE at the tiny scale it asks for
    assert seen['initialization'].shape == (len(X), 2)
    assert seen['initialization'][:, 0].std() == pytest.approx(1e-4,
                                                              rel=1e-3)
    b = build_tsne('opentsne', n_iter=300, init=start).fit_transform(X)
    c = build_tsne('opentsne', n_iter=300,
                   init=start[::-1].copy()).fit_transform(X)
    np.testing.assert_allclose(a, b)          # same start, same map
    assert np.abs(a - c).max() > 1.0          # another start, another map
    with pytest.raises(UserError, match=r'start layout has shape \(10, 2\)'):
        build_tsne('opentsne', init=np.zeros((10, 2))).fit_transform(X)


@pytest.mark.parametrize('backend', ['opentsne', 'sklearn'])
@pytest.mark.parametrize('n', [1, 2])
def test_fewer_than_three_samples_is_a_clear_error(backend, n):
    reducer = build_tsne(backend, perplexity=0.5)
    with pytest.raises(UserError, match=f'at least 3 samples, got {n}'):
        reducer.fit_transform(np.random.rand(n, 8))


@pytest.mark.parametrize('backend', ['opentsne', 'sklearn'])
@pytest.mark.parametrize('n', [3, 4, 7, 20])
def test_the_suggested_perplexity_really_runs(backend, n):
    import re
    with pytest.raises(UserError) as err:
        build_tsne(backend, perplexity=float(n)).check_n_samples(n)
    suggested = float(re.search(r'ideally about ([\d.]+)\)',
                                str(err.value)).group(1))
    reducer = build_tsne(backend, perplexity=suggested, n_iter=250)
    coords = reducer.fit_transform(
        np.random.default_rng(n).normal(size=(n, 8)))
    assert coords.shape == (n, 2) and np.isfinite(coords).all()


def test_opentsne_records_the_perplexity_it_really_uses(monkeypatch,
                                                        digits):
    X = digits[0][:31]
    seen = spy(monkeypatch, openTSNE.TSNE)
    reducer = build_tsne('opentsne', perplexity=25.0, n_iter=250)
    reducer.fit_transform(X)
    # openTSNE's ceiling is (N - 1) / 3 = 10: passed on, not lowered inside
    assert seen['perplexity'] == 10.0
    # a fitted value; the parameter stays as given
    assert reducer.perplexity_ == 10.0
    assert reducer.params['perplexity'] == 25.0
    assert reducer.used_params()['perplexity'] == 10.0  # run.json's
    assert reducer.describe() == 'opentsne t-SNE · perplexity 10'
    assert reducer.results()['perplexity_requested'] == 25.0
    # a perplexity it can use is kept, and nothing extra is recorded
    kept = build_tsne('opentsne', perplexity=5.0, n_iter=250)
    kept.fit_transform(X)
    assert kept.params['perplexity'] == kept.perplexity_ == 5.0
    assert 'perplexity_requested' not in kept.results()


def test_opentsne_refuses_a_perplexity_that_finds_no_neighbours():
    with pytest.raises(UserError, match='at least 1/3'):
        build_tsne('opentsne', perplexity=0.3)
    build_tsne('sklearn', perplexity=0.3)  # scikit-learn copes


def test_locality_order_puts_graph_neighbours_close_in_memory():
    from tsneviz.analysis.graphs import build_graph
    from tsneviz.reduction.tsne import locality_order

    # points on a plane in a random order: neighbours are scattered rows
    X = np.random.default_rng(0).uniform(size=(3000, 2))
    indices = build_graph(X, 15, 'euclidean')[0]
    order = locality_order(indices)
    assert np.array_equal(np.sort(order), np.arange(3000))
    position = np.empty_like(order)
    position[order] = np.arange(3000)
    before = np.abs(np.arange(3000)[:, None] - indices).mean()
    after = np.abs(position[:, None] - position[indices]).mean()
    assert before > 900 and after < before / 5


@pytest.mark.slow
@pytest.mark.parametrize('init', ['pca', 'random'])
def test_a_fit_in_locality_order_is_the_same_layout(monkeypatch, init):
    from tsneviz.analysis.graphs import graph_space, shared_graph
    from tsneviz.reduction.tsne import opentsne

    # above the 5,000 points from which the shared graph is in openTSNE's
    # own space (PCA-50, euclidean), so that the fit takes it
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    X = np.concatenate([X] + [X + rng.normal(0, .5, X.shape)
                              for _ in range(2)]).astype(np.float32)
    y = np.tile(y, 3)
    space = graph_space(X)
    graph = shared_graph(X, 90, space=space)
    ordered = []
    order_of = opentsne.locality_order
    monkeypatch.setattr(opentsne, 'locality_order',
                        lambda indices: ordered.append(1) or order_of(indices))
    layouts = []
    for threshold in (10 ** 9, 0):
        monkeypatch.setattr(opentsne, 'LOCALITY_MIN_SAMPLES', threshold)
        reducer = build_tsne('opentsne', init=init)
        layouts.append(reducer.fit_transform(
            X, graph=dict(graph, points=space[0])))
        assert reducer.used_graph_
    assert len(ordered) == 1  # only the second fit ran in locality order
    # each sample lands where it lands in the data's own order: the same
    # start and the same forces, summed in another order
    for axis in range(2):
        assert np.corrcoef(layouts[0][:, axis],
                           layouts[1][:, axis])[0, 1] > 0.98
    assert knn_accuracy(layouts[1], y, k=10) > 0.95
