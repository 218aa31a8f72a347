"""Clusterers, and clustering a real run of the digits model end to end."""
import csv
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from tests.conftest import REPO, make_demo_run
from tsneviz import rundir
from tsneviz.analysis.clustering import (
    KMeansClusterer,
    build_clusterer,
    cluster_features,
    default_n_clusters,
    methods,
    reduce_for_clustering,
)
from tsneviz.analysis.runs import cluster_run
from tsneviz.analysis.summary import COLUMNS
from tsneviz.errors import UserError
from tsneviz.registry import CLUSTERERS

TOOL = osp.join(REPO, 'tools', 'cluster.py')
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


@pytest.fixture(scope='module')
def digits_run(tmp_path_factory, digits_options):
    """A real run: 25 digits per class through the tiny trained model."""
    work_dir = str(tmp_path_factory.mktemp('clustering') / 'work')
    return make_demo_run(work_dir, digits_options, max_num_samples=25,
                         tsne=dict(perplexity=10.0, n_iter=300))


@pytest.fixture
def run_copy(digits_run, tmp_path):
    """A private copy of the run, for tests that write into it."""
    return shutil.copytree(digits_run, str(tmp_path / 'run'))


def blobs(n=150, centers=3, seed=0):
    return make_blobs(n_samples=n, centers=centers, n_features=16,
                      cluster_std=0.5, random_state=seed)


# ----------------------------------------------------------- clusterers


@pytest.mark.parametrize('method', ['kmeans', 'agglomerative'])
def test_clusterers_recover_separated_blobs(method):
    X, y = blobs()
    ids = build_clusterer(method, n_clusters=3).fit_predict(X)
    assert ids.dtype == np.int64 and ids.shape == (150,)
    assert adjusted_rand_score(y, ids) == 1.0


def test_hdbscan_marks_outliers_as_noise():
    X, y = blobs()
    far = np.random.default_rng(0).uniform(-200, 200, size=(5, 16))
    ids = build_clusterer('hdbscan', min_cluster_size=10).fit_predict(
        np.vstack([X, far]))
    assert (ids[-5:] == -1).all()
    assert adjusted_rand_score(y, ids[:150]) > 0.95
    assert set(ids[:150]) == {0, 1, 2}


def test_each_method_name_is_its_registry_key():
    assert methods() == ['kmeans', 'agglomerative', 'hdbscan']
    for name in methods():
        clusterer = CLUSTERERS.build(dict(type=name))
        # the key is the method's own name, and its defaults are what it
        # was built with: nothing lost or added by the registry
        assert clusterer.name == name
        assert clusterer.params == type(clusterer).defaults
        assert type(build_clusterer(name)) is type(clusterer)


def test_cli_method_choices_are_the_registry():
    import importlib.util

    spec = importlib.util.spec_from_file_location('cluster_tool', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    @CLUSTERERS.register_module(name='test_only')
    class TestOnly(KMeansClusterer):
        name = 'test_only'

    try:
        assert tool.parse_args(['run', '--method', 'test_only']).method == \
            'test_only'
    finally:
        CLUSTERERS.module_dict.pop('test_only')
    with pytest.raises(SystemExit):
        tool.parse_args(['run', '--method', 'test_only'])


@pytest.mark.parametrize('method, params, match', [
    ('kmeans', dict(n_clusters=0), r'n_clusters=0 is invalid'),
    ('kmeans', dict(min_cluster_size=3), "unknown parameter"),
    ('agglomerative', dict(linkage='median'), 'linkage'),
    ('agglomerative', dict(linkage='ward', metric='cosine'), "needs metric"),
    ('hdbscan', dict(min_cluster_size=1), 'min_cluster_size=1'),
    ('hdbscan', dict(n_clusters=4), 'finds the number of clusters'),
    ('spectral', {}, 'unknown clustering method'),
])
def test_bad_parameters_are_user_errors(method, params, match):
    with pytest.raises(UserError, match=match):
        build_clusterer(method, **params)


def test_more_clusters_than_samples_is_a_user_error():
    with pytest.raises(UserError, match='more than the 5 samples'):
        cluster_features(np.random.rand(5, 3), 'kmeans', n_clusters=6)
    with pytest.raises(UserError, match='min_cluster_size=10 is more'):
        cluster_features(np.random.rand(5, 3), 'hdbscan',
                         min_cluster_size=10)


def test_pca_before_clustering():
    X = np.random.default_rng(0).normal(size=(100, 128))
    assert reduce_for_clustering(X, 20).shape == (100, 20)
    assert reduce_for_clustering(X, 0).shape == (100, 128)
    assert reduce_for_clustering(X, None).shape == (100, 128)
    # an embedding has fewer columns than pca_dims: left as it is
    np.testing.assert_array_equal(reduce_for_clustering(X[:, :2], 50),
                                  X[:, :2])
    with pytest.raises(UserError, match='pca_dims'):
        reduce_for_clustering(X, -1)


def test_kmeans_is_seeded():
    X = np.random.default_rng(1).normal(size=(120, 8))
    a = cluster_features(X, n_clusters=5, seed=3, n_init=1)
    b = cluster_features(X, n_clusters=5, seed=3, n_init=1)
    np.testing.assert_array_equal(a, b)


def test_default_n_clusters_is_the_number_of_classes():
    assert default_n_clusters(np.array([3, 3, 7, 9, 9])) == 3


# ------------------------------------------------------- a real run


def test_kmeans_on_features_gives_one_pure_cluster_per_digit(digits_run):
    run = rundir.Run(digits_run)
    ids = cluster_features(run.features(), 'kmeans', n_clusters=10)
    purities = [np.bincount(run.labels[ids == c]).max() / (ids == c).sum()
                for c in range(10)]
    assert np.mean(purities) > 0.9
    # and not trivially so: clusters shuffled against labels are impure
    shuffled = np.random.default_rng(0).permutation(ids)
    assert np.mean([np.bincount(run.labels[shuffled == c]).max() /
                    (shuffled == c).sum() for c in range(10)]) < 0.5


def test_misclassified_samples_have_higher_loss(digits_run):
    table = rundir.Run(digits_run).table
    wrong = table['pred_label'] != table['gt_label']
    assert 0 < wrong.sum() < len(wrong) / 10  # a few mistakes, real ones
    assert table['loss'][wrong].mean() > 10 * table['loss'][~wrong].mean()


def test_cluster_run_writes_column_summary_plot_and_manifest(run_copy):
    rows = cluster_run(run_copy)
    run = rundir.Run(run_copy)
    # one cluster per digit by default, and they are pure
    assert len(rows) == 10 == run.manifest['clusters']['n_clusters']
    assert np.mean([r['purity'] for r in rows]) > 0.9
    assert sum(r['size'] for r in rows) == len(run)

    ids = run.table['cluster']
    assert ids.shape == (len(run),) and set(ids) == set(range(10))
    assert [r['size'] for r in sorted(rows, key=lambda r: r['cluster'])] \
        == np.bincount(ids.astype(int)).tolist()

    # ranked by mean loss; the costliest mistake sits in the first cluster
    losses = [r['mean_loss'] for r in rows]
    assert rows[0]['rank'] == 1 and losses[0] == max(losses)
    assert losses == sorted(losses, reverse=True)
    worst = int(np.argmax(run.table['loss']))
    assert ids[worst] == rows[0]['cluster']
    gt, pred = (str(int(run.table[c][worst]))
                for c in ('gt_label', 'pred_label'))
    assert rows[0]['top_confusions'].startswith(f'{gt}->{pred}:')

    with open(osp.join(run_copy, 'clusters.csv'), newline='') as f:
        reader = csv.reader(f)
        assert next(reader) == list(COLUMNS)
        assert len(list(reader)) == 10
    png = osp.join(run_copy, 'feat_3_cluster.png')
    assert open(png, 'rb').read(8) == PNG_SIGNATURE

    section = run.manifest['clusters']
    assert (section['method'], section['on'], section['key']) == \
        ('kmeans', 'features', 'feat_3')
    assert section['n_clusters_requested'] == 10
    assert section['ranked_by'] == 'mean_loss'
    assert {'clusters.csv', 'feat_3_cluster.png', 'samples.csv'} <= \
        set(run.manifest['outputs'])
    # run.json is written last
    assert osp.getmtime(osp.join(run_copy, 'run.json')) >= max(
        osp.getmtime(osp.join(run_copy, name))
        for name in ('clusters.csv', 'samples.csv', 'feat_3_cluster.png'))
    assert not [n for n in os.listdir(run_copy) if n.startswith('.')]


def test_hdbscan_on_the_embedding_keeps_noise_apart(run_copy):
    rows = cluster_run(run_copy, method='hdbscan', on='embedding',
                       min_cluster_size=15)
    run = rundir.Run(run_copy)
    ids = run.table['cluster'].astype(int)
    section = run.manifest['clusters']
    assert section['n_noise'] == int((ids == -1).sum())
    assert section['n_clusters'] == len(set(ids) - {-1})
    assert section['params'] == {'min_cluster_size': 15}
    assert section['pca_dims'] is None
    # every sample is counted once, noise included
    assert sum(r['size'] for r in rows) == len(run)
    if section['n_noise']:
        assert [r['size'] for r in rows if r['cluster'] == -1] == \
            [section['n_noise']]
    # digits are islands on the map: HDBSCAN finds about one per digit
    assert 8 <= section['n_clusters'] <= 14


def test_agglomerative_replaces_an_earlier_clustering(run_copy):
    cluster_run(run_copy, method='kmeans', n_clusters=3)
    rows = cluster_run(run_copy, method='agglomerative', n_clusters=12,
                       linkage='average')
    run = rundir.Run(run_copy)
    assert len(rows) == 12 and len(set(run.table['cluster'])) == 12
    assert list(run.table).count('cluster') == 1
    assert run.manifest['clusters']['params'] == {'linkage': 'average'}
    assert run.manifest['outputs'].count('clusters.csv') == 1


def test_run_without_predictions_ranks_by_size(features_run, tmp_path):
    # a run of a plain matrix (run_features) has no predictions at all
    run_copy = shutil.copytree(features_run, str(tmp_path / 'run'))
    assert not rundir.Run(run_copy).has_predictions
    rows = cluster_run(run_copy, n_clusters=4)
    sizes = [r['size'] for r in rows]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == 300
    assert [r['rank'] for r in rows] == [1, 2, 3, 4]
    assert all(r['error_rate'] is None and r['mean_loss'] is None
               for r in rows)
    assert rundir.Run(run_copy).manifest['clusters']['ranked_by'] == 'size'


def test_cluster_run_errors(run_copy):
    with pytest.raises(UserError, match="no feature 'feat_9'"):
        cluster_run(run_copy, key='feat_9')
    with pytest.raises(UserError, match='cannot cluster on'):
        cluster_run(run_copy, on='pixels')
    os.remove(osp.join(run_copy, 'run.json'))
    with pytest.raises(UserError, match='no run.json'):
        cluster_run(run_copy)


def test_render_views_of_a_real_run(run_copy):
    from tsneviz.visualization import render_views
    cluster_run(run_copy)
    written = render_views(run_copy, views=('errors', 'loss', 'cluster'))
    assert [osp.basename(p) for p in written] == \
        ['feat_3_errors.png', 'feat_3_loss.png', 'feat_3_cluster.png']
    for path in written:
        assert open(path, 'rb').read(8) == PNG_SIGNATURE
    outputs = rundir.Run(run_copy).manifest['outputs']
    assert {'feat_3_errors.png', 'feat_3_loss.png'} <= set(outputs)
    default = render_views(run_copy)
    assert [osp.basename(p) for p in default] == \
        ['feat_3_label.png', 'feat_3_errors.png']


# ----------------------------------------------------------------- CLI


def cli(*args):
    return subprocess.run([sys.executable, TOOL, *map(str, args)],
                          capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def test_cli_prints_top_clusters_and_the_csv_path(run_copy):
    done = cli(run_copy, '--method', 'hdbscan', '--on', 'embedding',
               '--min-cluster-size', '15')
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == osp.join(run_copy, 'clusters.csv')
    assert 'highest mean loss first' in done.stdout
    manifest = json.load(open(osp.join(run_copy, 'run.json')))
    assert manifest['clusters']['method'] == 'hdbscan'
    with open(osp.join(run_copy, 'clusters.csv'), newline='') as f:
        first = next(csv.DictReader(f))
    # the rank-1 cluster's confusions are in the printed table
    if first['top_confusions']:
        assert first['top_confusions'].split(';')[0] in done.stdout


def test_cli_unknown_key_is_one_line(run_copy):
    done = cli(run_copy, '--key', 'feat_9')
    assert done.returncode == 2
    assert 'Traceback' not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {run_copy} has no feature 'feat_9'; it has feat_3"]


def test_cli_refuses_a_directory_without_run_json(tmp_path):
    done = cli(tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f'error: {tmp_path} has no run.json: it is not a complete tsneviz '
        'run; run tools/vis_tsne.py again']


# ------------------------------------------------ the large-N paths


def wide_blobs(n=3000, centers=6, seed=0):
    """Blobs in 512-d, float32: the shape of a model's features."""
    X, y = make_blobs(n_samples=n, centers=centers, n_features=512,
                      cluster_std=4.0, random_state=seed)
    return X.astype(np.float32), y


def test_kmeans_above_large_n_is_minibatch_and_finds_the_blobs():
    X, y = wide_blobs()
    timings = {}
    ids = cluster_features(X, 'kmeans', n_clusters=6, large_n=1000,
                           timings=timings)
    assert timings['strategy'] == 'minibatch'
    assert adjusted_rand_score(y, ids) > 0.95
    assert set(timings) == {'pca', 'fit', 'strategy'}
    # below the threshold: Lloyd's k-means, as before
    exact = {}
    cluster_features(X[:900], 'kmeans', n_clusters=6, large_n=1000,
                     timings=exact)
    assert exact['strategy'] == 'exact'


def test_hdbscan_above_large_n_samples_then_assigns_the_rest():
    X, y = wide_blobs(n=4000, centers=5)
    far = np.random.default_rng(1).uniform(-300, 300, size=(4, 512))
    X = np.vstack([X, far.astype(np.float32)])
    timings = {}
    ids = cluster_features(X, 'hdbscan', min_cluster_size=20, large_n=800,
                           timings=timings)
    assert timings['strategy'] == 'subsample'
    assert ids.shape == (len(X),)
    # every blob found, samples outside the sample included
    assert adjusted_rand_score(y, ids[:-4]) > 0.9
    assert len(set(ids[:-4]) - {-1}) == 5
    assert (ids[-4:] != ids[0]).all()  # the far points join no blob at 0


def test_hdbscan_large_path_is_seeded():
    X, _ = wide_blobs(n=2000, centers=4)
    a = cluster_features(X, 'hdbscan', min_cluster_size=15, large_n=500,
                         seed=3)
    b = cluster_features(X, 'hdbscan', min_cluster_size=15, large_n=500,
                         seed=3)
    np.testing.assert_array_equal(a, b)


def test_agglomerative_above_large_n_is_refused_in_one_line():
    X, y = wide_blobs(n=1200, centers=4)
    with pytest.raises(UserError, match='use --method kmeans') as err:
        cluster_features(X, 'agglomerative', n_clusters=4, large_n=1000)
    assert str(err.value) == (
        'agglomerative clustering of 1200 samples is quadratic in time and '
        'memory (above 1000 samples); use --method kmeans (MiniBatchKMeans '
        'at this size) or hdbscan')
    # at or below the threshold it runs, exactly as before
    ids = cluster_features(X[:1000], 'agglomerative', n_clusters=4,
                           large_n=1000)
    assert adjusted_rand_score(y[:1000], ids) > 0.95


def test_pca_fitted_on_sampled_rows_keeps_the_blobs():
    X, y = wide_blobs(n=3000)
    Z = reduce_for_clustering(X, 20, fit_rows=500)
    assert Z.shape == (3000, 20) and Z.dtype == np.float32
    ids = build_clusterer('kmeans', n_clusters=6).fit_predict(Z)
    assert adjusted_rand_score(y, ids) > 0.95
    # fewer rows than fit_rows: fitted on all, float64 as before
    assert reduce_for_clustering(X[:400], 20, fit_rows=500).dtype == \
        np.float64


def test_cluster_run_records_strategy_and_seconds(run_copy):
    cluster_run(run_copy, large_n=100)
    section = rundir.Run(run_copy).manifest['clusters']
    assert section['strategy'] == 'minibatch' and section['large_n'] == 100
    assert set(section['timings']) == {'load', 'pca', 'fit', 'summary',
                                       'plot'}
    assert all(v >= 0 for v in section['timings'].values())
    # below the threshold the exact path, recorded as such
    cluster_run(run_copy)
    assert rundir.Run(run_copy).manifest['clusters']['strategy'] == 'exact'


def test_cluster_run_refuses_agglomerative_before_loading(run_copy):
    before = open(osp.join(run_copy, 'run.json')).read()
    with pytest.raises(UserError, match='quadratic'):
        cluster_run(run_copy, method='agglomerative', large_n=100)
    assert open(osp.join(run_copy, 'run.json')).read() == before
    assert not osp.exists(osp.join(run_copy, 'clusters.csv'))
