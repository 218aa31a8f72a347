"""The shared neighbour graph: built once per run and key, read by all."""
import json
import os.path as osp

import numpy as np
import pytest

from tsneviz.analysis import graphs
from tsneviz.analysis.graphs import build_graph, graph_recall, shared_graph
from tsneviz.registry import NEIGHBOR_GRAPHS


def clustered(n=3000, dim=50, centers=10, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(centers, dim))
    labels = rng.integers(centers, size=n)
    return (means[labels] + rng.normal(size=(n, dim))).astype(np.float32), \
        labels


@pytest.mark.parametrize('metric', ['euclidean', 'cosine'])
def test_annoy_recall_against_exact(metric):
    X, _ = clustered()
    idx, dist = build_graph(X, 30, metric, 'annoy')
    exact_idx, exact_dist = build_graph(X, 30, metric, 'exact')
    assert idx.shape == (3000, 30)
    assert not (idx == np.arange(3000)[:, None]).any()
    assert graph_recall(X, idx, metric) >= 0.9
    # distances converted to the metric asked for (annoy's own 'angular'
    # is sqrt(2 (1 - cos)))
    np.testing.assert_allclose(dist[:, 0], exact_dist[:, 0], rtol=1e-3,
                               atol=1e-4)


def test_recall_detects_a_wrong_graph():
    X, _ = clustered(n=500)
    wrong = np.random.default_rng(1).integers(500, size=(500, 10))
    assert graph_recall(X, wrong, 'euclidean') < 0.2
    assert graph_recall(X, build_graph(X, 10, 'euclidean')[0],
                        'euclidean') == 1.0


def test_small_runs_keep_the_exact_cosine_graph_on_features():
    X, _ = clustered(n=400, dim=80)
    graph = shared_graph(X, k=20)
    assert (graph['builder'], graph['space'], graph['metric']) == \
        ('exact', 'features', 'cosine')
    assert graph['recall'] == 1.0


def test_large_runs_search_the_pca_space(monkeypatch):
    monkeypatch.setattr(graphs, 'EXACT_MAX_SAMPLES', 1000)
    X, _ = clustered(n=2000, dim=80)
    graph = shared_graph(X, k=20)
    assert (graph['builder'], graph['space'], graph['metric']) == \
        ('exact', 'pca50', 'euclidean')
    assert graph['indices'].shape == (2000, 20)
    assert graph['recall'] == 1.0
    monkeypatch.setattr(graphs, 'APPROXIMATE_MIN_SAMPLES', 1500)
    graph = shared_graph(X, k=20)
    assert graph['builder'] == graphs.auto_builder(2000) != 'exact'
    assert 0.9 <= graph['recall'] <= 1.0  # measured, not assumed


@pytest.fixture
def counting_builder(monkeypatch):
    """An exact builder under its own name that counts its calls; runs of
    more than 100 points take it (the scale path)."""
    calls = []

    def counting(features, metric='cosine'):
        calls.append(features.shape)
        return graphs.exact_graph(features, metric)

    NEIGHBOR_GRAPHS.register_module(name='counting', module=counting,
                                    force=True)
    monkeypatch.setattr(graphs, 'EXACT_MAX_SAMPLES', 100)
    monkeypatch.setattr(graphs, 'APPROXIMATE_MIN_SAMPLES', 100)
    monkeypatch.setattr(graphs, 'AUTO_BUILDERS', ('counting',))
    yield calls
    NEIGHBOR_GRAPHS.module_dict.pop('counting', None)


def test_one_graph_per_run_read_by_every_step(counting_builder, monkeypatch,
                                              tmp_path):
    import openTSNE.affinity

    from tsneviz import analysis
    from tsneviz.analysis import neighbors
    from tsneviz.apis import run_features

    knn_indices = []
    original = openTSNE.affinity.PerplexityBasedNN

    def spy(*args, **kwargs):
        knn_indices.append(kwargs.get('knn_index'))
        return original(*args, **kwargs)

    monkeypatch.setattr(openTSNE.affinity, 'PerplexityBasedNN', spy)
    writes = []
    write_graph = neighbors.write_graph

    def counted_write(*args, **kwargs):
        writes.append(args[1])
        return write_graph(*args, **kwargs)

    monkeypatch.setattr(neighbors, 'write_graph', counted_write)

    def no_search(*args, **kwargs):
        raise AssertionError('the neighbours step searched again')

    monkeypatch.setattr(analysis, 'compute_neighbors', no_search)
    X, y = clustered(n=300, dim=80)
    run_dir = run_features(X, labels=y, work_dir=str(tmp_path),
                           tsne=dict(perplexity=10.0),
                           analysis=('neighbors',), show_progress=False)

    assert counting_builder == [(300, 50)]  # once, on the PCA-50 features
    assert len(knn_indices) == 1 and knn_indices[0] is not None
    assert knn_indices[0].k == 30  # 3 x perplexity
    assert writes == ['feat_0']  # the neighbours file, once
    manifest = json.loads(open(osp.join(run_dir, 'run.json')).read())
    graph = manifest['neighbor_graph']['feat_0']
    assert graph['builder'] == 'counting' and graph['space'] == 'pca50'
    assert graph['k'] == 30 and graph['recall'] == 1.0
    assert graph['used_by_layout'] is True
    assert manifest['results']['feat_0']['knn_space_features'] == 'pca50'
    assert manifest['analysis']['neighbors']['status'] == 'ok'
    stored = np.load(osp.join(run_dir, 'neighbors_feat_0.npz'))
    assert stored['indices'].shape == (300, 30)
    assert str(stored['builder']) == 'counting'


def test_knn_accuracy_votes_with_given_neighbours():
    from tsneviz.metrics import knn_accuracy

    X, y = clustered(n=300)
    idx = build_graph(X, 10, 'euclidean')[0]
    assert knn_accuracy(X, y, k=10, indices=idx) == knn_accuracy(X, y, k=10)
    # the given neighbours are what votes: shuffled ones vote worse
    wrong = np.random.default_rng(0).integers(300, size=(300, 10))
    assert knn_accuracy(X, y, k=10, indices=wrong) < 0.5


def test_hnsw_recall_against_exact():
    pytest.importorskip('hnswlib')
    X, _ = clustered()
    idx, dist = build_graph(X, 30, 'euclidean', 'hnsw')
    assert graph_recall(X, idx, 'euclidean') >= 0.9
    # hnswlib's 'l2' is squared: converted to the distance
    exact_dist = build_graph(X, 30, 'euclidean', 'exact')[1]
    np.testing.assert_allclose(dist[:, 0], exact_dist[:, 0], rtol=1e-3)


def test_auto_builder_falls_back_to_annoy_without_hnswlib(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None
                        if name == 'hnswlib' else find_spec(name))
    assert graphs.auto_builder(10 ** 6) == 'annoy'
    assert graphs.auto_builder(10 ** 5) == 'exact'


def test_hnsw_graph_never_lists_a_sample_as_its_own_neighbour():
    pytest.importorskip('hnswlib')
    X, _ = clustered()
    # exact duplicates: the search may return the twin before the sample
    X = np.concatenate([X, X[:50]])
    for metric in ('euclidean', 'cosine'):
        idx, dist = build_graph(X, 20, metric, 'hnsw')
        assert idx.shape == dist.shape == (len(X), 20)
        assert not (idx == np.arange(len(X))[:, None]).any()
        assert (np.diff(dist, axis=1) >= -1e-6).all()  # nearest first
        assert graph_recall(X, idx, metric) >= 0.9
    # each duplicate finds its twin at distance 0
    assert (dist[:50, 0] < 1e-5).all() and (idx[:50, 0] == np.arange(
        len(X) - 50, len(X))).all()
