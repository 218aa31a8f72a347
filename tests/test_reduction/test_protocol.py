"""What every registered reducer promises its callers (BaseReducer).

Built through the registry, each is an instance of its registered class;
its parameters stay as given by a fit; it says how many neighbours its fit
looks at; and its ``transform`` places new points on its map (PCA exactly,
t-SNE near where the map has the same samples) or refuses in one line.
"""
import copy

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.neighbors import NearestNeighbors

from tsneviz.errors import UserError
from tsneviz.reduction import (
    TSNE,
    BaseReducer,
    build_reducer,
    reducer_class,
    reducer_names,
)
from tsneviz.registry import REDUCERS

# What each registered method's transform does; a method registered later
# must say here what its maps do with new points.
PLACES = {'tsne': 'near', 'pca': 'exact', 'umap': 'refuses'}
# Small, fast settings for each (one thread: the machine is shared).
FAST = {'tsne': dict(n_iter=300, n_jobs=1), 'pca': {},
        'umap': dict(n_neighbors=10, n_epochs=50)}
# The CPU backends of --method tsne (the GPU ones have tests of their own).
CPU_BACKENDS = ['opentsne', 'sklearn']


@pytest.fixture(scope='module')
def digits():
    X, y = load_digits(return_X_y=True)
    keep = np.sort(np.random.default_rng(0).choice(len(X), 300,
                                                    replace=False))
    return X[keep].astype(np.float32), y[keep]


def _cases():
    """``(method, settings)`` per registered method, t-SNE per backend."""
    for method in reducer_names():
        if method == 'tsne':
            for backend in CPU_BACKENDS:
                yield method, dict(FAST[method], backend=backend)
        else:
            yield method, dict(FAST.get(method, {}))


CASES = list(_cases())
IDS = [f'{m}-{s.get("backend", "")}'.rstrip('-') for m, s in CASES]


def test_every_registered_method_says_what_its_maps_do():
    assert set(reducer_names()) == set(PLACES)


@pytest.mark.parametrize('method, settings', CASES, ids=IDS)
def test_built_reducers_are_instances_of_the_registered_class(method,
                                                              settings):
    cls = reducer_class(method)
    for reducer in (REDUCERS.build(dict(type=method, **settings)),
                    build_reducer(method, **settings),
                    cls.build(**settings)):
        assert isinstance(reducer, cls) and isinstance(reducer, BaseReducer)
    if 'backend' in settings:
        assert reducer.backend == settings['backend']


def test_tsne_backends_build_themselves():
    auto = REDUCERS.build(dict(type='tsne'))
    assert isinstance(auto, TSNE) and auto.backend != 'auto'
    for backend in CPU_BACKENDS:
        cls = type(build_reducer('tsne', backend=backend))
        assert type(cls.build(perplexity=5.0)) is cls
    with pytest.raises(UserError, match="unknown t-SNE backend 'umap'"):
        REDUCERS.build(dict(type='tsne', backend='umap'))


@pytest.mark.parametrize('method, settings', CASES, ids=IDS)
def test_transform_places_points_or_refuses_in_one_line(method, settings,
                                                        digits):
    X, _ = digits
    reducer = build_reducer(method, **settings)
    coords = reducer.fit_transform(X)
    copies = X[:60]
    if PLACES[method] == 'refuses':
        with pytest.raises(UserError) as err:
            reducer.transform(copies)
        assert '\n' not in str(err.value)
        return
    placed = reducer.transform(copies)
    assert placed.shape == (60, coords.shape[1])
    assert placed.dtype == np.float32 and np.isfinite(placed).all()
    np.testing.assert_array_equal(reducer.embedding_, coords)  # unmoved
    if PLACES[method] == 'exact':
        np.testing.assert_allclose(placed, coords[:60],
                                   atol=1e-4 * np.abs(coords).max())
        return
    # copies of fitted samples land where the map has them: far closer
    # than each sample's 10th nearest map neighbour
    moved = np.linalg.norm(placed - coords[:60], axis=1)
    tenth = NearestNeighbors(n_neighbors=11).fit(coords).kneighbors(
        coords[:60])[0][:, 10]
    assert np.median(moved) < 0.25 * np.median(tenth), \
        (np.median(moved), np.median(tenth))


@pytest.mark.parametrize('method, settings', CASES, ids=IDS)
def test_a_map_rebuilt_from_its_record_places_as_the_fit_does(
        method, settings, digits):
    """``from_map`` (what placement uses on a run) gives the fitted state:
    the parameters recorded, the features and the map."""
    X, _ = digits
    reducer = build_reducer(method, **settings)
    coords = reducer.fit_transform(X)
    rebuilt = reducer_class(method).from_map(reducer.used_params(), X,
                                             coords)
    assert isinstance(rebuilt, reducer_class(method))
    if PLACES[method] == 'refuses':
        with pytest.raises(UserError):
            rebuilt.transform(X[:5])
        return
    np.testing.assert_allclose(rebuilt.transform(X[:20]),
                               reducer.transform(X[:20]), atol=1e-4)


@pytest.mark.parametrize('method, settings', CASES, ids=IDS)
def test_params_stay_as_given_by_a_fit(method, settings, digits):
    X, _ = digits
    if method == 'tsne':
        # above openTSNE's (N - 1) / 3 for 31 samples: the fit lowers it
        settings = dict(settings, perplexity=25.0)
        X = X[:31]
    reducer = build_reducer(method, **settings)
    given = copy.deepcopy(reducer.params)
    reducer.fit_transform(X)
    assert reducer.params == given
    if method == 'tsne':
        # what the fit used is a fitted value, and what run.json records
        lowered = settings['backend'] == 'opentsne'
        assert reducer.perplexity_ == (10.0 if lowered else 25.0)
        assert reducer.used_params() == dict(given,
                                             perplexity=reducer.perplexity_)


def test_neighbours_each_method_needs():
    assert build_reducer('tsne', backend='opentsne',
                         perplexity=30.0).n_neighbors_for(1000) == 90
    assert build_reducer('tsne', backend='sklearn',
                         perplexity=30.0).n_neighbors_for(50) == 49
    # the lowered perplexity of few samples asks for all the others
    assert build_reducer('tsne', backend='opentsne',
                         perplexity=25.0).n_neighbors_for(31) == 30
    assert build_reducer('umap', n_neighbors=15).n_neighbors_for(1000) == 15
    assert build_reducer('pca').n_neighbors_for(1000) == 0


def test_a_graph_is_taken_only_in_the_reducers_own_space(digits):
    from tsneviz.analysis.graphs import shared_graph

    X = np.tile(digits[0], (1, 2))  # 128 columns: the t-SNE's PCA-50
    reducer = build_reducer('tsne', backend='opentsne', perplexity=10.0,
                            n_iter=250, n_jobs=1)
    features_graph = shared_graph(X, 30)  # exact, cosine, on features
    assert features_graph['space'] == 'features'
    reducer.fit_transform(X, graph=features_graph)
    assert reducer.used_graph_ is False  # it searched its own PCA space
    cosine = build_reducer('tsne', backend='opentsne', perplexity=10.0,
                           n_iter=250, n_jobs=1, metric='cosine',
                           pca_dims=0)
    cosine.fit_transform(X, graph=features_graph)
    assert cosine.used_graph_ is True
    # too few columns for 3 x perplexity: searched again
    few = build_reducer('tsne', backend='opentsne', perplexity=20.0,
                        n_iter=250, n_jobs=1, metric='cosine', pca_dims=0)
    few.fit_transform(X, graph=features_graph)
    assert few.used_graph_ is False
