"""Where the map can be trusted: real t-SNE, PCA and scrambled maps of the
test digits, and the run's one neighbour graph read, not searched again."""
import json
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, make_features_run

# a fixture: the run's graph builder, counting its builds
from tests.test_analysis.test_graphs import (
    clustered,
    counting_builder,  # noqa: F401
)
from tsneviz import rundir
from tsneviz.analysis.reliability import (
    COLUMN,
    measure_reliability,
    neighbourhood_overlap,
)
from tsneviz.rundir import Run

TOOL = osp.join(REPO, 'tools', 'reliability.py')


@pytest.fixture(scope='module')
def tsne_run(tmp_path_factory, digits_root):
    """300 digits laid out by t-SNE, clustered, then measured by the
    default step."""
    return make_features_run(tmp_path_factory.mktemp('rel') / 'work',
                             digits_root,
                             analysis=('clusters', 'reliability', 'report'))


def scrambled_copy(run_dir: str, folder, seed: int = 0) -> str:
    """A copy of a run whose map rows are randomly permuted: every point
    keeps a position the layout made, at another sample's place."""
    copy = str(folder / 'scrambled')
    shutil.copytree(run_dir, copy)
    run = Run(copy)
    coords = run.coords()
    rows = np.random.default_rng(seed).permutation(len(coords))
    rundir.write_array(osp.join(copy, rundir.coords_file(run.method,
                                                         run.key())),
                       coords[rows])
    return copy


def test_tsne_map_is_reliable_and_a_scrambled_one_is_not(tsne_run,
                                                        tmp_path):
    from sklearn.manifold import trustworthiness as sk_trust

    from tsneviz.metrics import trustworthiness

    run = Run(tsne_run)
    n = len(run)
    values = run.table[COLUMN]
    assert values.shape == (n,) and np.isfinite(values).all()
    assert values.min() >= 0 and values.max() <= 1
    manifest = run.manifest
    assert manifest['analysis']['reliability']['status'] == 'ok'
    section = manifest['reliability']
    results = manifest['results'][run.key()]
    assert section['k'] == 10 and section['chance'] == round(10 / (n - 1), 4)
    assert section['mean'] > 0.5 > 10 * section['chance']
    assert section['mean'] == pytest.approx(values.mean(), abs=1e-3)
    # next to trustworthiness, with its neighbourhood and rows
    assert results['trustworthiness'] > 0.9
    assert results['continuity'] > 0.9
    assert results['continuity_k'] == results['trustworthiness_k']
    assert results['n_samples_continuity'] == \
        results['n_samples_trustworthiness'] == n
    feats, coords = run.features(), run.coords()
    k = results['trustworthiness_k']
    # continuity is trustworthiness with the two spaces swapped
    assert results['continuity'] == pytest.approx(
        sk_trust(coords, feats, n_neighbors=k), abs=1e-6)

    # the column, sample by sample, against sets built another way
    from sklearn.neighbors import NearestNeighbors
    graph = run.neighbors()['indices'][:, :10]
    on_map = NearestNeighbors(n_neighbors=11).fit(coords).kneighbors(
        coords, return_distance=False)
    for i in range(0, n, 17):
        mine = set(on_map[i].tolist()) - {i}
        expected = len(set(graph[i].tolist()) & mine) / 10
        assert values[i] == pytest.approx(expected, abs=1e-4), i

    # the same samples on a scrambled map: chance
    copy = scrambled_copy(tsne_run, tmp_path)
    scrambled = measure_reliability(copy)
    assert abs(scrambled['mean'] - scrambled['chance']) < 0.03
    assert scrambled['continuity'] < 0.65
    assert trustworthiness(feats, Run(copy).coords(), n_neighbors=k) < 0.65
    assert abs(scrambled['distance_spearman']) < 0.1
    assert Run(copy).manifest['results'][run.key()]['continuity'] == \
        scrambled['continuity']


def test_pca_keeps_distances_better_than_a_random_map(digits_root,
                                                      tmp_path):
    run_dir = make_features_run(tmp_path / 'pca', digits_root,
                                method='pca', tsne=dict(perplexity=None),
                                analysis=('reliability',))
    pca = Run(run_dir).manifest['reliability']
    random_map = measure_reliability(scrambled_copy(run_dir, tmp_path),
                                     n_pairs=5000)
    n = len(Run(run_dir))
    # fewer pairs than the default: all of them
    assert pca['distance_spearman_pairs'] == n * (n - 1) // 2
    assert random_map['distance_spearman_pairs'] == 5000
    assert pca['distance_spearman'] > 0.6
    assert pca['distance_spearman'] > random_map['distance_spearman'] + 0.5


def test_the_run_graph_is_read_not_searched_again(counting_builder,  # noqa
                                                  monkeypatch, tmp_path):
    from tsneviz.analysis import neighbors
    from tsneviz.apis import run_features

    def no_search(*args, **kwargs):
        raise AssertionError('searched the features again')

    monkeypatch.setattr(neighbors, 'compute_neighbors', no_search)
    X, y = clustered(n=300, dim=80)
    run_dir = run_features(X, labels=y, work_dir=str(tmp_path),
                           tsne=dict(perplexity=10.0),
                           analysis=('neighbors', 'reliability'),
                           show_progress=False)
    assert counting_builder == [(300, 50)]  # the run's one graph
    manifest = json.load(open(osp.join(run_dir, 'run.json')))
    assert manifest['analysis']['reliability']['status'] == 'ok'
    section = manifest['reliability']
    assert section['graph'] == dict(space='pca50', metric='euclidean')
    assert section['mean'] > 0.5  # well-separated clusters


def test_overlap_counts_shared_neighbours():
    rng = np.random.default_rng(0)
    idx = np.stack([rng.permutation(50)[:7] for _ in range(40)])
    assert (neighbourhood_overlap(idx, idx[:, ::-1]) == 1).all()
    other = np.stack([rng.permutation(50)[:7] for _ in range(40)])
    expected = [len(set(a) & set(b)) / 7 for a, b in zip(idx, other)]
    np.testing.assert_allclose(neighbourhood_overlap(idx, other), expected)


def test_tool_from_another_folder(tsne_run, tmp_path):
    copy = str(tmp_path / 'run')
    shutil.copytree(tsne_run, copy)
    done = subprocess.run([sys.executable, TOOL, copy, '--k', '5',
                           '--pairs', '2000'], cwd=str(tmp_path),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'mean map reliability' in done.stdout
    section = Run(copy).manifest['reliability']
    assert section['k'] == 5 and section['distance_spearman_pairs'] == 2000
    assert osp.isfile(osp.join(copy, section['figure']))
    # the graph keeps 30 neighbours (3 x perplexity 10)
    bad = subprocess.run([sys.executable, TOOL, copy, '--k', '40'],
                         cwd=str(tmp_path), capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        'error: the neighbour graph of feat_0 keeps 30 neighbours per '
        'sample; use --k 30 or less']


def test_report_lists_the_least_reliable_regions(tsne_run):
    from PIL import Image

    run = Run(tsne_run)
    section = run.manifest['reliability']
    text = open(osp.join(tsne_run, 'report.md'), encoding='utf-8').read()
    part = text.split('## Where the map can be trusted')[1].split('\n## ')[0]
    assert section['by'] == 'cluster'
    regions = section['regions']
    means = [r['mean_reliability'] for r in regions]
    assert means == sorted(means) and len(regions) >= 3
    assert f'| 1 | {regions[0]["region"]} |' in part
    assert 'continuity' in part and 'local, not global' in part
    assert f'![the map coloured by reliability]({section["figure"]})' in part
    with Image.open(osp.join(tsne_run, section['figure'])) as img:
        assert img.format == 'PNG' and img.width > 300
