"""A model whose classes are not the dataset's (tsneviz.labels).

ImageNet models with their 1000-class heads, unmodified, run on the 10-class
digits folder: predictions are reported in the model's classes, nothing is
compared with the truth, and every analysis step still runs. A 10-class
digits model on a folder of 3 of its classes is matched by name.
"""
import csv
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from tests.conftest import DEMO_CHECKPOINT, DEMO_CONFIG, mmpretrain_config
from tests.test_model import digits_dataset
from tsneviz.apis import run_vis_tsne
from tsneviz.config import load_config
from tsneviz.labels import LabelSpace, match
from tsneviz.rundir import Run

DIGITS = [str(i) for i in range(10)]


def rows_of(run_dir):
    with open(osp.join(run_dir, 'samples.csv'), newline='') as f:
        return list(csv.DictReader(f))


def manifest_of(run_dir):
    with open(osp.join(run_dir, 'run.json')) as f:
        return json.load(f)


# ------------------------------------------------------------ matching rule
def test_same_names_map_to_themselves():
    mapping, how, reason = match(DIGITS, 10, 10, DIGITS)
    assert mapping == list(range(10)) and how == 'same class names'
    assert reason is None


def test_names_in_another_order_map_by_name():
    space = LabelSpace.build(['cat', 'dog', 'fox'], None, 3,
                             ['fox', 'cat', 'dog'])
    assert space.matched and 'another order' in space.how
    assert space.to_model([0, 1, 2, -1]).tolist() == [1, 2, 0, -1]
    assert space.correct([0, 1, 2], [1, 0, 0]).tolist() == [True, False,
                                                            True]
    assert space.model_name(0) == 'fox' and space.dataset_name(0) == 'cat'


def test_same_count_without_names_on_one_side_matches():
    named_data = LabelSpace.build(['a', 'b'], None, 2, None)
    assert named_data.matched and named_data.model_name(1) == 'b'
    named_model = LabelSpace.build(None, [0, 1, 1], 2, ['x', 'y'])
    assert named_model.matched and named_model.dataset_name(1) == 'y'
    assert named_model.dataset_classes() == ['x', 'y']
    unnamed = LabelSpace.build(None, [0, 2], 3, None)
    assert unnamed.matched and unnamed.model_name(2) == '2'


def test_different_count_without_names_does_not_match():
    space = LabelSpace.build(DIGITS, None, 1000, None)
    assert not space.matched and space.correct([0], [0]) is None
    assert '10 classes' in space.reason and '1000' in space.reason
    assert space.model_name(705) == 'model:705'
    assert space.dataset_name(7) == '7'
    with pytest.raises(ValueError, match='not matched'):
        space.to_model([0])
    # names of another head (10 names for 1000 outputs) name nothing
    assert LabelSpace.build(DIGITS, None, 1000, DIGITS).model_names is None


def test_subset_by_name_maps_to_the_models_ids():
    space = LabelSpace.build(['3', '5', '8'], None, 10, DIGITS)
    assert space.matched and '3 of the model\'s 10' in space.how
    assert space.to_model([0, 1, 2]).tolist() == [3, 5, 8]
    assert space.model_name(5) == '5' and space.dataset_name(2) == '8'


def test_unmatched_names_say_which():
    space = LabelSpace.build(['cat', 'zebra', 'okapi'], None, 3,
                             ['cat', 'dog', 'fox'])
    assert not space.matched
    assert "2 of the dataset's 3" in space.reason
    assert "'zebra'" in space.reason and "'okapi'" in space.reason
    assert space.model_name(1) == 'dog'
    # a dataset without names whose ids go past the model's classes
    assert not LabelSpace.build(None, [0, 12], 10, None).matched


def test_label_space_round_trips_through_json():
    space = LabelSpace.build(['3', '5', '8'], None, 10, DIGITS)
    section = json.loads(json.dumps(space.to_json()))
    assert section['matched'] and section['to_model'] == [3, 5, 8]
    assert section['dataset'] == dict(size=3, names=['3', '5', '8'])
    assert LabelSpace.from_json(section) == space
    assert LabelSpace.from_run({'label_space': section}) == space


def test_runs_before_label_spaces_assume_one_space():
    table = dict(gt_label=np.array([0., 1.]), gt_class=np.array(
        ['cat', 'dog'], dtype=object), pred_label=np.array([1., 2.]),
        pred_class=np.array(['dog', 'fox'], dtype=object))
    space = LabelSpace.from_run({'classes': None}, table)
    assert space.matched and space.model_name(2) == 'fox'
    assert space.correct([0, 1], [1, 1]).tolist() == [False, True]
    without = LabelSpace.from_run({'classes': ['a', 'b']},
                                  dict(gt_label=np.array([0., 1.])))
    assert not without.matched and without.model_size is None


def test_views_show_predictions_in_the_models_classes():
    from tsneviz.errors import UserError
    from tsneviz.visualization import view_style
    table = dict(gt_label=np.array([0, 1, 2]),
                 pred_label=np.array([705, 705, 3]))
    other = LabelSpace.build(['a', 'b', 'c'], None, 1000)
    style = view_style(table, 'prediction', other)
    assert [name for name, _ in style.legend] == ['model:3', 'model:705']
    with pytest.raises(UserError, match='not the dataset'):
        view_style(table, 'errors', other)
    # matched by name, a prediction takes the colour of the class it names
    subset = LabelSpace.build(['3', '5', '8'], None, 10, DIGITS)
    table = dict(gt_label=np.array([0, 1, 2]), pred_label=np.array([3, 3,
                                                                    8]))
    label = view_style(table, 'label', subset)
    pred = view_style(table, 'prediction', subset)
    np.testing.assert_array_equal(pred.colors[[0, 2]], label.colors[[0, 2]])
    assert view_style(table, 'errors', subset).highlighted.tolist() == [
        False, True, False]


# ---------------------------------------------- ImageNet heads on digits
SWEEP = {
    'resnet50': 'resnet/resnet50_8xb32_in1k.py',
    'swin-tiny': 'swin_transformer/swin-tiny_16xb64_in1k.py',
    'convnext-tiny': 'convnext/convnext-tiny_32xb128_in1k.py',
    'mobilenet-v3-small': 'mobilenet_v3/mobilenet-v3-small_8xb128_in1k.py',
    'efficientnet-b0': 'efficientnet/efficientnet-b0_8xb32_in1k.py',
    'deit-tiny': 'deit/deit-tiny_4xb256_in1k.py',
    'vit-base-p32': 'vision_transformer/vit-base-p32_64xb64_in1k.py',
    'mobilevit-xxsmall': 'mobilevit/mobilevit-xxsmall_8xb128_in1k.py',
    'shufflenet-v2': 'shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py',
    'regnetx-400mf': 'regnet/regnetx-400mf_8xb128_in1k.py',
}


@pytest.mark.parametrize('name', list(SWEEP))
def test_imagenet_head_on_digits_runs_every_step(name, tmp_path,
                                                 digits_root):
    config = mmpretrain_config(SWEEP[name])
    keep = load_config(config).test_dataloader.dataset.get('pipeline')
    run_dir = run_vis_tsne(
        config, None, work_dir=str(tmp_path), max_num_samples=2,
        cfg_options={'test_dataloader.dataset': digits_dataset(digits_root,
                                                               keep),
                     'test_dataloader.num_workers': 0,
                     'test_dataloader.batch_size': 8},
        show_progress=False, tsne=dict(perplexity=5.0, n_iter=250))

    manifest = manifest_of(run_dir)
    space = manifest['label_space']
    assert space['dataset'] == dict(size=10, names=DIGITS)
    assert space['model'] == dict(size=1000, names=None)
    assert space['matched'] is False and space['to_model'] is None
    assert '1000' in space['reason']
    rows = rows_of(run_dir)
    assert len(rows) == 20
    assert {'pred_label', 'pred_class', 'score', 'entropy'} <= set(rows[0])
    assert 'loss' not in rows[0]
    for row in rows:
        assert row['pred_class'] == f'model:{row["pred_label"]}'
        assert row['gt_class'] == row['gt_label']  # the digits' own names
    assert np.load(osp.join(run_dir, 'logits.npy')).shape == (20, 1000)
    log = open(osp.join(run_dir, 'tsne.log')).read()
    assert 'label spaces not matched' in log

    # every analysis step ran, in the model's space where it shows
    # predictions, and nothing compared the two spaces
    files = set(os.listdir(run_dir))
    key = manifest['extraction']['keys'][0]
    assert {f'{key}_label.png', f'{key}_prediction.png',
            f'neighbors_{key}.npz', 'clusters.csv', f'{key}_cluster.png',
            'report.md', 'report.html', 'index.html'} <= files
    assert f'{key}_errors.png' not in files
    assert 'confusion_matrix.png' not in files
    assert 'accuracy' not in manifest['report']
    assert manifest['clusters']['ranked_by'] == 'size'
    with open(osp.join(run_dir, 'clusters.csv'), newline='') as f:
        clusters = list(csv.DictReader(f))
    assert all(c['error_rate'] == '' and c['mean_loss'] == ''
               for c in clusters)
    report = open(osp.join(run_dir, 'report.md')).read()
    assert 'Predictions by class' in report and 'model:' in report
    page = open(osp.join(run_dir, 'index.html')).read()
    assert '"pred_names"' in page and 'model:' in page


# ------------------------------------------- a subset of a model's classes
@pytest.fixture(scope='module')
def three_digits(digits_root, tmp_path_factory):
    """A folder with classes 3, 5 and 8 of the digits only."""
    root = tmp_path_factory.mktemp('three_digits')
    for name in ('3', '5', '8'):
        shutil.copytree(osp.join(digits_root, 'val', name),
                        root / 'val' / name)
    return str(root)


def test_subset_of_the_models_classes_matches_by_name(three_digits,
                                                      tmp_path):
    # the demo checkpoint's meta names its classes '0'..'9'
    run_dir = run_vis_tsne(
        DEMO_CONFIG, DEMO_CHECKPOINT, work_dir=str(tmp_path),
        max_num_samples=15, show_progress=False,
        cfg_options={'test_dataloader.dataset.data_root': three_digits,
                     'test_dataloader.num_workers': 0,
                     'test_dataloader.persistent_workers': False},
        tsne=dict(perplexity=10.0, n_iter=250),
        analysis=('views', 'clusters', 'report'))

    manifest = manifest_of(run_dir)
    space = manifest['label_space']
    assert space['matched'] is True and space['to_model'] == [3, 5, 8]
    assert space['dataset']['names'] == ['3', '5', '8']
    assert space['model'] == dict(size=10, names=DIGITS)
    assert manifest['classes'] == ['3', '5', '8']

    rows = rows_of(run_dir)
    gt = np.array([int(r['gt_label']) for r in rows])
    pred = np.array([int(r['pred_label']) for r in rows])
    assert sorted(set(gt)) == [0, 1, 2]  # the dataset's own ids
    assert [r['gt_class'] for r in rows] == [['3', '5', '8'][y] for y in gt]
    assert all(r['pred_class'] == r['pred_label'] for r in rows)
    model_gt = np.array([3, 5, 8])[gt]
    # loss is the cross-entropy at the model's id of the true class
    logits = np.load(osp.join(run_dir, 'logits.npy')).astype(np.float64)
    log_p = logits - logits.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    np.testing.assert_allclose([float(r['loss']) for r in rows],
                               -log_p[np.arange(len(rows)), model_gt],
                               rtol=1e-6)
    # the trained model gets most of them right in its own ids; compared
    # as raw ids (0..2 against 3/5/8) it would get none
    accuracy = manifest['report']['accuracy']
    assert accuracy == pytest.approx(np.mean(pred == model_gt))
    assert accuracy > 0.8 and np.mean(pred == gt) < 0.2
    assert osp.isfile(osp.join(run_dir, 'feat_3_errors.png'))
    assert osp.isfile(osp.join(run_dir, 'confusion_matrix.png'))

    run = Run(run_dir)
    assert run.label_space.matched
    assert run.label_space.dataset_name(1) == '5'
    from tsneviz.report import class_errors
    errors = {e['name']: e for e in class_errors(run)}
    assert set(errors) == {'3', '5', '8'}
    for e in errors.values():
        members = gt == ['3', '5', '8'].index(e['name'])
        assert e['accuracy'] == pytest.approx(
            np.mean(pred[members] == int(e['name'])))

    # neighbours (tool, grid and server) name the truth in the dataset's
    # classes and the prediction in the model's, compared in the model's
    from tsneviz.analysis.neighbors import describe_sample
    for position in range(len(rows)):
        item = describe_sample(run, position)
        assert item['gt_class'] == ['3', '5', '8'][gt[position]]
        assert item['pred_class'] == str(pred[position])
        assert item['correct'] == bool(pred[position] == model_gt[position])


def test_mmpretrains_own_case_three_images_perplexity_two(digits_root,
                                                          tmp_path):
    # mmpretrain's test of vis_tsne.py: mobilevit-xxsmall, 3 images
    root = tmp_path / 'three'
    for name in ('0', '1', '2'):
        folder = osp.join(digits_root, 'val', name)
        os.makedirs(root / 'val' / name)
        first = sorted(os.listdir(folder))[0]
        shutil.copy(osp.join(folder, first), root / 'val' / name / first)
    config = mmpretrain_config('mobilevit/mobilevit-xxsmall_8xb128_in1k.py')
    keep = load_config(config).test_dataloader.dataset.get('pipeline')
    run_dir = run_vis_tsne(
        config, None, work_dir=str(tmp_path / 'work'), show_progress=False,
        cfg_options={'test_dataloader.dataset': digits_dataset(str(root),
                                                               keep),
                     'test_dataloader.num_workers': 0},
        tsne=dict(perplexity=2.0, n_iter=250))
    assert manifest_of(run_dir)['label_space']['matched'] is False
    assert [r['gt_class'] for r in rows_of(run_dir)] == ['0', '1', '2']
    assert osp.isfile(osp.join(run_dir, 'index.html'))
