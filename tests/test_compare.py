"""tsneviz.compare and tools/compare.py: trained vs random weights."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial import procrustes

from tests.conftest import DEMO_CHECKPOINT, DEMO_CONFIG, REPO
from tsneviz.compare import compare_runs, disparity, procrustes_align
from tsneviz.errors import UserError
from tsneviz.rundir import Run, read_table, write_table

FAST = dict(perplexity=10.0, n_iter=400)


def make_run(work_dir, options, checkpoint):
    from tsneviz.apis import run_vis_tsne
    return run_vis_tsne(DEMO_CONFIG, checkpoint, analysis=(),
                        work_dir=work_dir, cfg_options=dict(options),
                        max_num_samples=15,
                        tsne=dict(FAST), show_progress=False)


@pytest.fixture(scope='module')
def runs(tmp_path_factory, digits_options):
    """The trained checkpoint and seeded random weights, same samples."""
    root = tmp_path_factory.mktemp('compare')
    work_dir = str(root / 'work')
    trained = make_run(work_dir, digits_options, DEMO_CHECKPOINT)
    random = make_run(work_dir, digits_options, None)
    return dict(trained=trained, random=random, work_dir=work_dir)


@pytest.fixture(scope='module')
def procrustes_result(runs, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('cmp') / 'procrustes')
    return compare_runs(runs['trained'], runs['random'], out_dir=out)


def shuffled_copy(run_dir, dest, seed=0):
    """The run with its rows (table and arrays) in another order."""
    shutil.copytree(run_dir, dest)
    n = Run(run_dir).labels.size
    perm = np.random.default_rng(seed).permutation(n)
    table = read_table(osp.join(dest, 'samples.csv'))
    write_table(osp.join(dest, 'samples.csv'),
                {k: [v[i] for i in perm] for k, v in table.items()})
    for name in ('feat_3.npy', 'tsne_feat_3.npy', 'logits.npy'):
        path = osp.join(dest, name)
        np.save(path, np.load(path)[perm])
    return str(dest)


def test_trained_beats_random_weights(procrustes_result, runs):
    rows = {r['name']: r for r in procrustes_result['metrics']}
    assert set(rows) == {'knn_accuracy_features', 'knn_accuracy_embedding',
                         'trustworthiness', 'silhouette_features',
                         'accuracy', 'mean_loss'}
    for name in ('knn_accuracy_features', 'knn_accuracy_embedding'):
        assert rows[name]['better'] == 'A', name
        assert rows[name]['direction'] == 'higher'
        assert rows[name]['a'] > rows[name]['b'] + 0.2
    # the numbers are the runs' own (Procrustes keeps B's layout)
    for key in ('trained', 'random'):
        stored = Run(runs[key]).manifest['results']['feat_3']
        side = 'a' if key == 'trained' else 'b'
        for name in ('knn_accuracy_features', 'knn_accuracy_embedding',
                     'trustworthiness'):
            assert rows[name][side] == pytest.approx(stored[name]), name
    assert rows['mean_loss']['direction'] == 'lower'
    assert rows['mean_loss']['better'] == 'A'
    assert rows['accuracy']['better'] == 'A'


def test_outputs_name_both_runs(procrustes_result, runs):
    files = procrustes_result['files']
    for name in ('png', 'md', 'json'):
        assert osp.isfile(files[name])
    assert open(files['png'], 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
    saved = json.load(open(files['json']))
    assert saved['run_a']['label'] == 'resnet18-slim_digits.pth'
    assert saved['run_b']['label'] == 'random init (no checkpoint)'
    assert saved['run_b']['checkpoint'] is None
    assert saved['metrics'] == json.loads(json.dumps(
        procrustes_result['metrics']))
    md = open(files['md']).read()
    knn = next(r for r in saved['metrics']
               if r['name'] == 'knn_accuracy_features')
    assert (f'| 10-NN accuracy, feature space | higher | **{knn["a"]:.4f}** '
            f'| {knn["b"]:.4f} | A |') in md
    assert 'random init (no checkpoint)' in md


def test_default_out_dir_is_beside_run_a(runs):
    result = compare_runs(runs['trained'], runs['random'], align='none')
    a, b = (osp.basename(runs[k]) for k in ('trained', 'random'))
    assert result['out_dir'] == osp.join(runs['work_dir'],
                                         f'compare_{a}_vs_{b}')
    assert osp.isfile(osp.join(result['out_dir'], 'compare.json'))
    al = result['alignment']
    assert al['disparity_before'] == al['disparity_after']


def test_procrustes_brings_b_closer_to_a(procrustes_result, runs):
    al = procrustes_result['alignment']
    assert al['disparity_after'] < al['disparity_before']
    coords_a = Run(runs['trained']).coords()
    coords_b = Run(runs['random']).coords()
    assert al['disparity_before'] == pytest.approx(
        disparity(coords_a, coords_b))
    aligned = np.load(osp.join(procrustes_result['out_dir'],
                               'coords_b_aligned.npy'))
    assert disparity(coords_a, aligned) == pytest.approx(
        al['disparity_after'], rel=1e-5)
    # scipy's own Procrustes analysis finds the same frame for B (its map is
    # standardised and shrunk by the least-squares scale: compare shapes)
    _, scipy_b, scipy_disparity = procrustes(coords_a, coords_b)
    mine = aligned - aligned.mean(axis=0)
    np.testing.assert_allclose(mine / np.linalg.norm(mine),
                               scipy_b / np.linalg.norm(scipy_b), atol=1e-5)
    # at the optimum scipy reports 1 - s^2 where disparity() gives 2 - 2 s
    s = np.sqrt(1 - scipy_disparity)
    assert al['disparity_after'] == pytest.approx(2 - 2 * s, rel=1e-5)
    # no rotation or reflection of B does better
    for angle in np.linspace(0, 2 * np.pi, 24, endpoint=False):
        c, s = np.cos(angle), np.sin(angle)
        for turn in ([[c, -s], [s, c]], [[c, s], [s, -c]]):
            assert disparity(coords_a, coords_b @ np.array(turn)) >= \
                al['disparity_after'] - 1e-6
    # only the frame changed: B's pairwise distances up to one scale
    from scipy.spatial.distance import pdist
    ratio = pdist(aligned) / pdist(coords_b)
    assert np.allclose(ratio, al['scale'], rtol=1e-4)


def test_procrustes_align_recovers_a_known_transform():
    a = np.random.default_rng(0).normal(size=(60, 2))
    turn = np.array([[0.6, -0.8], [0.8, 0.6]])
    aligned, info = procrustes_align(a, 2.5 * a @ turn + [4.0, -1.0])
    np.testing.assert_allclose(aligned, a, atol=1e-10)
    assert info['scale'] == pytest.approx(0.4)
    assert not info['reflection']


def test_init_alignment_reruns_tsne_from_a(runs, tmp_path):
    result = compare_runs(runs['trained'], runs['random'], align='init',
                          out_dir=str(tmp_path / 'init'))
    al = result['alignment']
    assert al['disparity_after'] < al['disparity_before']
    assert al['kl_divergence'] > 0
    rows = {r['name']: r for r in result['metrics']}
    # a new map of B: its embedding metrics are measured on it
    assert rows['knn_accuracy_embedding']['better'] == 'A'
    aligned = np.load(osp.join(tmp_path, 'init', 'coords_b_aligned.npy'))
    assert aligned.shape == (150, 2) and np.isfinite(aligned).all()


def test_b_in_another_order_is_reordered(runs, tmp_path, procrustes_result):
    b = shuffled_copy(runs['random'], tmp_path / 'shuffled')
    result = compare_runs(runs['trained'], b, out_dir=str(tmp_path / 'o'))
    assert result['reordered'] and not procrustes_result['reordered']
    for mine, ref in zip(result['metrics'], procrustes_result['metrics']):
        assert mine['a'] == pytest.approx(ref['a'])
        assert mine['b'] == pytest.approx(ref['b'], abs=1e-6), mine['name']
    assert result['alignment']['disparity_after'] == pytest.approx(
        procrustes_result['alignment']['disparity_after'])


def test_different_samples_are_a_one_line_user_error(runs, tmp_path):
    b = str(tmp_path / 'other')
    shutil.copytree(runs['random'], b)
    table = read_table(osp.join(b, 'samples.csv'))
    for i in range(3):
        table['img_path'][i] = table['img_path'][i].replace('.png', '_x.png')
    write_table(osp.join(b, 'samples.csv'), table)
    with pytest.raises(UserError) as err:
        compare_runs(runs['trained'], b, out_dir=str(tmp_path / 'o'))
    message = str(err.value)
    assert '3 of A\'s 150 samples are not in B' in message
    assert '3 of B\'s 150 are not in A' in message
    assert '\n' not in message
    assert not osp.exists(tmp_path / 'o')


def test_run_without_run_json_is_a_user_error(runs, tmp_path):
    b = str(tmp_path / 'incomplete')
    shutil.copytree(runs['random'], b)
    os.remove(osp.join(b, 'run.json'))
    with pytest.raises(UserError, match='no run.json'):
        compare_runs(runs['trained'], b)
    with pytest.raises(UserError, match='unknown --align'):
        compare_runs(runs['trained'], runs['random'], align='umap')


def run_tool(*args):
    return subprocess.run([sys.executable, osp.join(REPO, 'tools',
                                                    'compare.py'), *args],
                          capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def test_cli_prints_table_and_paths(runs, tmp_path):
    out = str(tmp_path / 'cli')
    proc = run_tool(runs['trained'], runs['random'], '--align', 'none',
                    '--out', out)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-3:] == [osp.join(out, n) for n in
                          ('compare.png', 'compare.md', 'compare.json')]
    assert '10-NN accuracy, feature space' in proc.stdout
    assert 'mean loss' in proc.stdout


def test_cli_error_is_one_line(runs, tmp_path):
    proc = run_tool(runs['trained'], str(tmp_path))
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().count('\n') == 0
    assert proc.stderr.startswith('error: ') and 'run.json' in proc.stderr
