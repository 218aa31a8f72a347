"""tsneviz.compare.compare_checkpoints and tools/compare.py with 3 runs.

The runs are the demo model after its first, second and third epoch of
training (configs/digits/checkpoints/, made by
tools/train_digits_checkpoints.py) on the same 150 val digits.
"""
import csv
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, make_demo_run
from tsneviz.compare import compare_checkpoints
from tsneviz.compare.cartography import REGIONS, cartography
from tsneviz.errors import UserError
from tsneviz.rundir import Run, read_table, write_table

CHECKPOINTS = [osp.join(REPO, 'configs', 'digits', 'checkpoints',
                        f'epoch_{e}.pth') for e in (1, 2, 3)]
PER_CLASS = 15
N = 10 * PER_CLASS


def make_checkpoint_runs(work_dir, digits_options):
    """One run per checkpoint, same samples, fast t-SNE."""
    return [make_demo_run(work_dir, digits_options, checkpoint=ckpt,
                          max_num_samples=PER_CLASS,
                          tsne=dict(perplexity=10.0, n_iter=300))
            for ckpt in CHECKPOINTS]


@pytest.fixture(scope='module')
def runs(tmp_path_factory, digits_options):
    return make_checkpoint_runs(tmp_path_factory.mktemp('ckpt') / 'work',
                                digits_options)


@pytest.fixture(scope='module')
def result(runs, tmp_path_factory):
    return compare_checkpoints(runs, out_dir=str(
        tmp_path_factory.mktemp('follow') / 'out'))


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def column(rows, name):
    return np.array([float(r[name]) for r in rows])


def test_confidence_rises_and_is_the_true_class_probability(result, runs):
    means = [c['mean_confidence'] for c in result['checkpoints']]
    assert means[0] + 0.05 < means[-1], means
    rows = read_csv(result['files']['csv'])
    for t, run_dir in enumerate(runs):
        # p(true) from the run's own logits, not from its loss column
        run = Run(run_dir)
        logits = run.logits()
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        truth = p[np.arange(N), run.labels]
        np.testing.assert_allclose(column(rows, f'confidence_{t + 1}'),
                                   truth, atol=1e-5)
        assert means[t] == pytest.approx(truth.mean(), abs=1e-6)
    assert result['checkpoints'][0]['label'] == 'epoch_1.pth'
    acc = [c['metrics']['accuracy'] for c in result['checkpoints']]
    assert acc[-1] >= acc[0]


def test_every_output_has_every_sample(result):
    files = result['files']
    assert result['n_samples'] == N
    for name, figure in result['figures'].items():
        assert figure.get('n_points', figure.get('rows')) == N, name
    coords = np.load(files['coords'])
    assert coords.shape == (3, N, 2) and np.isfinite(coords).all()
    with Image.open(files['gif']) as gif:
        assert gif.format == 'GIF' and gif.n_frames == 3
        frames = []
        for i in range(3):
            gif.seek(i)
            frames.append(np.asarray(gif.convert('RGB'), dtype=np.int16))
    # the points moved: consecutive frames are different pictures
    assert all(np.abs(a - b).sum() > 0 for a, b in zip(frames, frames[1:]))
    rows = read_csv(files['csv'])
    assert len(rows) == N
    assert len({(r['img_path'], r['index']) for r in rows}) == N
    with Image.open(files['cartography']) as png:
        assert png.format == 'PNG'
    saved = json.load(open(files['json']))
    assert saved['files']['gif'] == 'checkpoints.gif'
    assert saved['figures']['animation']['frames'] == 3


def test_movement_is_measured_in_the_common_frame(result):
    rows = read_csv(result['files']['csv'])
    coords = np.load(result['files']['coords']).astype(np.float64)
    for t in range(3):
        np.testing.assert_allclose(column(rows, f'x_{t + 1}'),
                                   coords[t, :, 0], atol=1e-4)
    steps = [np.hypot(*(coords[t + 1] - coords[t]).T) for t in range(2)]
    np.testing.assert_allclose(column(rows, 'moved_1_2'), steps[0],
                               atol=1e-3)
    np.testing.assert_allclose(column(rows, 'moved_2_3'), steps[1],
                               atol=1e-3)
    np.testing.assert_allclose(column(rows, 'moved_total'),
                               steps[0] + steps[1], atol=1e-3)
    assert column(rows, 'moved_total').max() > 0
    means = [c['mean_moved_from_previous'] for c in result['checkpoints']]
    assert means[0] is None
    assert means[1] == pytest.approx(steps[0].mean(), rel=1e-4)


def test_maps_start_from_the_last_runs_map(result, runs):
    assert result['start'] == 'last'
    assert result['start_run'] == osp.abspath(runs[-1])
    start_map = Run(runs[-1]).coords()
    coords = np.load(result['files']['coords'])
    disparities = [c['disparity_to_start'] for c in result['checkpoints']]
    # the last checkpoint's features, started from their own map, stay
    # close to it; the first checkpoint's features move further away
    assert disparities[-1] < 0.1
    assert disparities[0] > disparities[-1]
    from tsneviz.compare import disparity
    assert disparity(start_map, coords[-1]) == pytest.approx(
        disparities[-1], abs=1e-4)
    assert result['tsne_params']['perplexity'] == 10.0


def test_neighbourhood_overlap_matches_scikit_learn(result, runs):
    from sklearn.neighbors import NearestNeighbors

    def knn(features):
        nn = NearestNeighbors(n_neighbors=11, metric='cosine').fit(features)
        return nn.kneighbors(features, return_distance=False)[:, 1:]

    first, last = (knn(Run(r).features()) for r in (runs[0], runs[-1]))
    expected = np.array([len(set(a) & set(b)) / 10
                         for a, b in zip(first, last)])
    rows = read_csv(result['files']['csv'])
    overlap = column(rows, 'knn_overlap')
    # ties at the k-th neighbour may fall either way
    assert np.mean(np.abs(overlap - expected) < 1e-6) > 0.95
    changed = result['most_changed']
    assert len(changed) == 20
    assert [c['knn_overlap'] for c in changed] == sorted(
        c['knn_overlap'] for c in changed)
    assert changed[0]['knn_overlap'] == pytest.approx(overlap.min())
    assert expected.min() < 1.0  # training did change neighbourhoods


def test_cartography_regions_cover_every_sample(result):
    carto = result['cartography']
    assert carto['n_checkpoints'] == 3
    assert sum(carto['counts'].values()) == N
    rows = read_csv(result['files']['csv'])
    regions = [r['region'] for r in rows]
    assert set(regions) <= set(REGIONS)
    for name in REGIONS:
        assert regions.count(name) == carto['counts'][name]
    conf = np.stack([column(rows, f'confidence_{t}') for t in (1, 2, 3)])
    np.testing.assert_allclose(column(rows, 'confidence'), conf.mean(0),
                               atol=1e-5)
    np.testing.assert_allclose(column(rows, 'variability'), conf.std(0),
                               atol=1e-5)
    for row in rows:
        var, mean = float(row['variability']), float(row['confidence'])
        want = 'ambiguous' if var >= carto['variability_threshold'] else \
            'easy-to-learn' if mean >= carto['confidence_threshold'] \
            else 'hard-to-learn'
        assert row['region'] == want


def test_cartography_regions_by_definition():
    conf = np.array([[0.95, 0.1, 0.05, 0.8],
                     [0.97, 0.9, 0.1, 0.85],
                     [0.99, 0.95, 0.08, 0.9]])
    out = cartography(conf)
    assert out['region'].tolist() == ['easy-to-learn', 'ambiguous',
                                      'hard-to-learn', 'easy-to-learn']
    assert out['counts'] == {'easy-to-learn': 2, 'ambiguous': 1,
                             'hard-to-learn': 1}


def shuffled_copy(run_dir, dest, seed=0):
    shutil.copytree(run_dir, dest)
    perm = np.random.default_rng(seed).permutation(N)
    table = read_table(osp.join(dest, 'samples.csv'))
    write_table(osp.join(dest, 'samples.csv'),
                {k: [v[i] for i in perm] for k, v in table.items()})
    for name in ('feat_3.npy', 'tsne_feat_3.npy', 'logits.npy'):
        path = osp.join(dest, name)
        np.save(path, np.load(path)[perm])
    os.remove(osp.join(dest, 'neighbors_feat_3.npz'))
    return str(dest)


def test_a_run_in_another_order_is_reordered(runs, result, tmp_path):
    middle = shuffled_copy(runs[1], tmp_path / 'shuffled')
    again = compare_checkpoints([runs[0], middle, runs[2]],
                                out_dir=str(tmp_path / 'out'))
    assert again['reordered'] and not result['reordered']
    for mine, ref in zip(again['checkpoints'], result['checkpoints']):
        assert mine['mean_confidence'] == pytest.approx(
            ref['mean_confidence'], abs=1e-9)
        assert mine['metrics']['accuracy'] == ref['metrics']['accuracy']
    assert again['cartography']['counts'] == result['cartography']['counts']


def test_other_samples_are_a_one_line_user_error(runs, tmp_path):
    other = str(tmp_path / 'other')
    shutil.copytree(runs[1], other)
    table = read_table(osp.join(other, 'samples.csv'))
    for i in range(4):
        table['img_path'][i] = table['img_path'][i].replace('.png', '_x.png')
    write_table(osp.join(other, 'samples.csv'), table)
    out = tmp_path / 'o'
    with pytest.raises(UserError) as err:
        compare_checkpoints([runs[0], other, runs[2]], out_dir=str(out))
    assert 'are not on the same samples' in str(err.value)
    assert '4 of B\'s 150 are not in A' in str(err.value)
    assert '\n' not in str(err.value)
    assert not out.exists()
    with pytest.raises(UserError, match='two runs or more'):
        compare_checkpoints(runs[:1])
    with pytest.raises(UserError, match='unknown --start'):
        compare_checkpoints(runs, start='middle')


def test_a_run_without_a_head_is_named_in_one_line(runs, tmp_path):
    headless = str(tmp_path / 'headless')
    shutil.copytree(runs[1], headless)
    table = read_table(osp.join(headless, 'samples.csv'))
    for name in ('pred_label', 'pred_class', 'score', 'entropy', 'loss'):
        table.pop(name, None)
    write_table(osp.join(headless, 'samples.csv'), table)
    os.remove(osp.join(headless, 'logits.npy'))
    out = compare_checkpoints([runs[0], headless, runs[2]],
                              out_dir=str(tmp_path / 'out'))
    notes = [n for n in out['notes'] if 'headless' in n]
    assert len(notes) == 1 and 'no classification head' in notes[0]
    assert out['checkpoints'][1]['mean_confidence'] is None
    assert out['cartography']['checkpoints'] == [1, 3]
    assert sum(out['cartography']['counts'].values()) == N
    rows = read_csv(out['files']['csv'])
    assert 'confidence_2' in rows[0] and rows[0]['confidence_2'] == ''


def run_tool(*args):
    return subprocess.run([sys.executable, osp.join(REPO, 'tools',
                                                    'compare.py'), *args],
                          capture_output=True, text=True, cwd='/',
                          timeout=300)


@pytest.mark.slow
def test_cli_follows_three_runs(runs, tmp_path):
    out = str(tmp_path / 'cli')
    proc = run_tool(*runs, '--out', out, '--start', 'first')
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-6:] == [osp.join(out, n) for n in (
        'checkpoints.gif', 'checkpoints.html', 'checkpoints.csv',
        'cartography.png', 'checkpoints.md', 'checkpoints.json')]
    assert 'epoch_1.pth' in proc.stdout and 'easy-to-learn' in proc.stdout
    saved = json.load(open(osp.join(out, 'checkpoints.json')))
    assert saved['start'] == 'first'
    assert saved['start_run'] == osp.abspath(runs[0])


def test_cli_refuses_a_flag_of_the_other_mode(runs):
    proc = run_tool(*runs, '--align', 'init')
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().count('\n') == 0
    assert '--align' in proc.stderr


def test_api_reexports_it_lazily():
    import tsneviz.apis as apis
    assert 'compare_checkpoints' in apis.__all__
    assert apis.compare_checkpoints is compare_checkpoints
