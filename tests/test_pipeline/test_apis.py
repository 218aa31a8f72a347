"""tsneviz.apis.run_vis_tsne end to end on the digits and the demo model."""
import csv
import glob
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from tests.conftest import DEMO_CHECKPOINT, DEMO_CONFIG
from tsneviz.apis import run_vis_tsne
from tsneviz.checkpoint import file_sha256
from tsneviz.errors import UserError

FAST = dict(perplexity=10.0, n_iter=400)


def run(work_dir, options, **kwargs):
    kwargs.setdefault('tsne', dict(FAST))
    kwargs.setdefault('max_num_samples', 15)
    kwargs.setdefault('analysis', ())
    return run_vis_tsne(DEMO_CONFIG, kwargs.pop('checkpoint', DEMO_CHECKPOINT),
                        work_dir=work_dir, cfg_options=dict(options),
                        show_progress=False, **kwargs)


def read_rows(run_dir):
    with open(osp.join(run_dir, 'samples.csv'), newline='') as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope='module')
def first_run(tmp_path_factory, digits_options):
    work_dir = str(tmp_path_factory.mktemp('apis') / 'work')
    # the one run here that goes through every analysis step
    return work_dir, run(work_dir, digits_options, analysis=None)


def test_run_directory_holds_every_output(first_run):
    work_dir, run_dir = first_run
    assert osp.dirname(run_dir) == work_dir
    assert osp.basename(run_dir).startswith('tsne_')
    manifest = json.load(open(osp.join(run_dir, 'run.json')))
    for name in manifest['outputs']:
        assert osp.isfile(osp.join(run_dir, name)), name
    assert {'feat_3.npy', 'feat_3.png', 'samples.csv', 'config.py',
            'tsne.log', 'logits.npy'} <= set(os.listdir(run_dir))
    feats = np.load(osp.join(run_dir, 'feat_3.npy'))
    assert feats.shape == (150, 128) and feats.dtype == np.float32
    # no temporary files left behind by the atomic writes
    assert not glob.glob(osp.join(run_dir, '.tmp_*'))


def test_manifest_records_the_run(first_run):
    _, run_dir = first_run
    m = json.load(open(osp.join(run_dir, 'run.json')))
    assert m['checkpoint']['sha256'] == file_sha256(DEMO_CHECKPOINT)
    assert m['checkpoint']['missing_keys'] == []
    assert m['seed'] == 0 and m['n_samples'] == 150
    assert m['extraction']['stage'] == 'neck'
    assert m['extraction']['taps'][0]['module'] == 'neck'
    assert m['tsne']['backend'] == 'opentsne'
    assert m['tsne']['params']['perplexity'] == 10.0
    result = m['results']['feat_3']
    assert result['kl_divergence'] > 0
    assert 0.9 <= result['trustworthiness'] <= 1
    # a trained model separates the digits, in features and on the map
    assert result['knn_accuracy_features'] >= 0.9
    assert result['knn_accuracy_embedding'] >= 0.9
    assert {'config', 'dataset', 'model', 'extraction', 'tsne:feat_3',
            'total'} <= set(m['timings'])
    assert {'torch', 'mmengine', 'mmpretrain', 'openTSNE'} <= \
        set(m['versions'])
    assert m['classes'] == [str(i) for i in range(10)]


def test_table_has_one_row_per_sample_with_predictions(first_run):
    _, run_dir = first_run
    rows = read_rows(run_dir)
    assert len(rows) == 150
    assert list(rows[0]) == ['index', 'img_path', 'gt_label', 'gt_class',
                             'pred_label', 'pred_class', 'score', 'entropy',
                             'loss', 'feat_3_x', 'feat_3_y', 'cluster',
                             'label_quality', 'label_issue',
                             'map_reliability']
    counts = np.bincount([int(r['gt_label']) for r in rows])
    assert counts.tolist() == [15] * 10
    for r in rows:
        assert osp.basename(osp.dirname(r['img_path'])) == r['gt_class']
    correct = [float(r['loss']) for r in rows
               if r['gt_label'] == r['pred_label']]
    wrong = [float(r['loss']) for r in rows
             if r['gt_label'] != r['pred_label']]
    assert len(correct) > 0.9 * len(rows)
    if wrong:
        assert np.mean(wrong) > np.mean(correct)
    coords = np.load(osp.join(run_dir, 'tsne_feat_3.npy'))
    np.testing.assert_allclose(coords[:, 0],
                               [float(r['feat_3_x']) for r in rows],
                               rtol=1e-6)


def test_rerun_with_other_tsne_settings_reuses_features(first_run,
                                                        digits_options):
    work_dir, first = first_run
    again = run(work_dir, digits_options, tsne=dict(perplexity=20.0,
                                                    n_iter=300))
    m = json.load(open(osp.join(again, 'run.json')))
    assert m['extraction']['cached_from'] == osp.abspath(first)
    assert 'features_from_cache' in m['timings']
    assert 'model' not in m['timings']
    assert m['tsne']['params']['perplexity'] == 20.0
    np.testing.assert_array_equal(np.load(osp.join(first, 'feat_3.npy')),
                                  np.load(osp.join(again, 'feat_3.npy')))
    assert read_rows(first)[0]['loss'] == read_rows(again)[0]['loss']
    # other samples (another seed) must not reuse them
    other = run(work_dir, digits_options, seed=1)
    m = json.load(open(osp.join(other, 'run.json')))
    assert m['extraction']['cached_from'] is None


def test_three_components_and_first_sampling(tmp_path, digits_options):
    run_dir = run(str(tmp_path), digits_options, sampling='first',
                  max_num_samples=5, tsne=dict(n_components=3,
                                               perplexity=5.0, n_iter=300))
    rows = read_rows(run_dir)
    assert {'feat_3_x', 'feat_3_y', 'feat_3_z'} <= set(rows[0])
    assert np.load(osp.join(run_dir, 'tsne_feat_3.npy')).shape == (50, 3)
    # first in file order: the 5 smallest dataset indices of each class
    indices = [int(r['index']) for r in rows]
    assert indices == sorted(indices)


def test_failure_after_start_leaves_no_run_directory(tmp_path,
                                                    digits_options):
    work_dir = str(tmp_path / 'work')
    with pytest.raises(UserError, match='unknown stage'):
        run(work_dir, digits_options, vis_stage='layer9')
    assert glob.glob(osp.join(work_dir, 'tsne_*')) == []


def test_unreadable_image_fails_naming_the_file(tmp_path, digits_root):
    root = tmp_path / 'digits'
    shutil.copytree(digits_root, root)
    broken = sorted(glob.glob(str(root / 'val' / '3' / '*.png')))[0]
    with open(broken, 'wb') as f:
        f.write(b'not a png')
    work_dir = str(tmp_path / 'work')
    options = {'test_dataloader.dataset.data_root': str(root),
               'test_dataloader.num_workers': 0}
    with pytest.raises(UserError) as err:
        run(work_dir, options, sampling='first', max_num_samples=1000)
    assert f'cannot read image {broken}' in str(err.value)
    assert '\n' not in str(err.value)
    assert glob.glob(osp.join(work_dir, 'tsne_*')) == []


def test_without_checkpoint_weights_are_seeded(tmp_path, digits_options):
    a = run(str(tmp_path / 'a'), digits_options, checkpoint=None,
            use_cache=False, max_num_samples=3, tsne=dict(perplexity=5.0,
                                                          n_iter=250))
    b = run(str(tmp_path / 'b'), digits_options, checkpoint=None,
            use_cache=False, max_num_samples=3, tsne=dict(perplexity=5.0,
                                                          n_iter=250))
    np.testing.assert_array_equal(np.load(osp.join(a, 'feat_3.npy')),
                                  np.load(osp.join(b, 'feat_3.npy')))
    assert json.load(open(osp.join(a, 'run.json')))['checkpoint'][
        'sha256'] is None


def test_analysis_after_the_run_writes_its_outputs(first_run):
    _, run_dir = first_run
    m = json.load(open(osp.join(run_dir, 'run.json')))
    names = set(os.listdir(run_dir))
    # label view + errors view, neighbours, clusters, report
    assert {'feat_3_label.png', 'feat_3_errors.png', 'neighbors_feat_3.npz',
            'clusters.csv', 'report.md', 'report.html'} <= names
    for name in ('neighbors_feat_3.npz', 'clusters.csv', 'report.md'):
        assert name in m['outputs']
    assert 'cluster' in read_rows(run_dir)[0]


def test_pca_layout_and_no_analysis(tmp_path, digits_options):
    run_dir = run(str(tmp_path), digits_options, method='pca', analysis=(),
                  tsne=dict(n_components=3))
    m = json.load(open(osp.join(run_dir, 'run.json')))
    assert m['layout']['method'] == 'pca' and 'tsne' not in m
    assert np.load(osp.join(run_dir, 'pca_feat_3.npy')).shape == (150, 3)
    assert not osp.exists(osp.join(run_dir, 'clusters.csv'))
    from tsneviz.rundir import Run
    assert Run(run_dir).coords().shape == (150, 3)
    with pytest.raises(UserError, match='unknown analysis'):
        from tsneviz.apis import analyze_run
        analyze_run(run_dir, steps=('colours',))
