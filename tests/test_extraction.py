"""tsneviz.extraction on real mmpretrain models and real digit images."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

from tests.conftest import DEMO_CHECKPOINT, DEMO_CONFIG
from tsneviz.data import build_dataset, build_loader
from tsneviz.errors import UserError
from tsneviz.extraction import extract, pool, prediction_columns
from tsneviz.model import build_model

TINY_VIT = dict(
    type='ImageClassifier',
    backbone=dict(type='VisionTransformer',
                  arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                            feedforward_channels=64),
                  img_size=32, patch_size=8, out_type='raw'),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=10,
              in_channels=32),
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[78.0] * 3,
                           std=[82.5] * 3, to_rgb=True))


@pytest.fixture(scope='module')
def demo_cfg(digits_root):
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.merge_from_dict({'test_dataloader.dataset.data_root': digits_root})
    return cfg


@pytest.fixture(scope='module')
def loader_factory(demo_cfg):
    dataset = build_dataset(demo_cfg.test_dataloader)
    indices = np.arange(0, len(dataset), 27)[:20]  # 20 samples, all classes

    def make(batch_size=8):
        loader, positions = build_loader(demo_cfg.test_dataloader, dataset,
                                         indices, batch_size, 0)
        return loader
    return make


@pytest.fixture(scope='module')
def demo_model(demo_cfg):
    model, _ = build_model(demo_cfg, DEMO_CHECKPOINT)
    return model


def build(model_cfg):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(model_cfg)
    return model.eval()


def reference_features(model, loader, stage):
    """What mmpretrain's vis_tsne.py computes: extract_feat, then pool."""
    out = []
    with torch.no_grad():
        for data in loader:
            data = model.data_preprocessor(data, False)
            feats = model.extract_feat(data['inputs'], stage=stage)
            feats = feats if isinstance(feats, tuple) else (feats, )
            out.append([F.adaptive_avg_pool2d(f, 1).flatten(1)
                        if f.ndim == 4 else f for f in feats])
    return [torch.cat([batch[i] for batch in out]).numpy()
            for i in range(len(out[0]))]


def no_hooks_left(model):
    return all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize('stage', ['backbone', 'neck', 'pre_logits'])
def test_stages_equal_mmpretrain_extract_feat(stage, demo_model,
                                              loader_factory):
    result = extract(demo_model, loader_factory(), stage)
    expected = reference_features(demo_model, loader_factory(), stage)
    got = list(result.features.values())
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert no_hooks_left(demo_model)


def test_default_stage_is_the_models_extract_feat_default(demo_model,
                                                         loader_factory):
    result = extract(demo_model, loader_factory())
    assert result.stage == 'neck' and list(result.features) == ['feat_3']
    np.testing.assert_allclose(
        result.features['feat_3'],
        reference_features(demo_model, loader_factory(), 'neck')[0],
        atol=1e-5)


def test_several_out_indices_give_one_key_each(demo_cfg, loader_factory):
    cfg = demo_cfg.model.copy()
    cfg.backbone.out_indices = (1, 2, 3)
    cfg.neck = None
    cfg.head = None
    result = extract(build(cfg), loader_factory(), 'backbone')
    assert list(result.features) == ['feat_1', 'feat_2', 'feat_3']
    assert [f.shape for f in result.features.values()] == \
        [(20, 32), (20, 64), (20, 128)]
    assert all(t.pooling == 'global average pool' for t in result.taps)
    assert result.logits is None  # no head, no fake predictions


def test_named_module_is_tapped_and_the_hook_removed(demo_model,
                                                    loader_factory):
    result = extract(demo_model, loader_factory(), 'backbone.layer3')
    assert list(result.features) == ['feat_backbone.layer3']
    assert result.taps[0].raw_shape == [64, 8, 8]
    expected = []
    with torch.no_grad():
        for data in loader_factory():
            x = demo_model.data_preprocessor(data, False)['inputs']
            b = demo_model.backbone
            x = b.relu(b.norm1(b.conv1(x)))
            x = b.layer3(b.layer2(b.layer1(x)))
            expected.append(x.mean(dim=(2, 3)))
    np.testing.assert_allclose(result.features['feat_backbone.layer3'],
                               torch.cat(expected).numpy(), atol=1e-5)
    assert no_hooks_left(demo_model)


def test_vit_tokens_are_pooled_by_mean_or_class_token(loader_factory):
    model = build(TINY_VIT)
    mean = extract(model, loader_factory(), 'backbone', token_pool='mean')
    cls = extract(model, loader_factory(), 'backbone', token_pool='cls')
    key = list(mean.features)[0]
    assert mean.taps[0].raw_shape == [17, 32]  # 16 patches + class token
    raw = []
    with torch.no_grad():
        for data in loader_factory():
            x = model.data_preprocessor(data, False)['inputs']
            raw.append(model.backbone(x)[0])
    raw = torch.cat(raw).numpy()
    np.testing.assert_allclose(cls.features[key], raw[:, 0], atol=1e-5)
    np.testing.assert_allclose(mean.features[key], raw.mean(axis=1),
                               atol=1e-5)
    assert cls.taps[0].pooling.startswith('class token')


def test_model_without_neck_reads_backbone_for_neck(loader_factory):
    cfg = dict(TINY_VIT)
    cfg['backbone'] = dict(TINY_VIT['backbone'], out_type='cls_token')
    model = build(cfg)
    neck = extract(model, loader_factory(), 'neck')
    backbone = extract(model, loader_factory(), 'backbone')
    np.testing.assert_array_equal(list(neck.features.values())[0],
                                  list(backbone.features.values())[0])
    assert neck.logits.shape == (20, 10)


def test_batch_of_one_keeps_the_batch_axis(demo_model, loader_factory):
    x = torch.rand(1, 8, 4, 4)
    assert pool(x)[0].shape == (1, 8)
    assert pool(torch.rand(1, 5, 8), 'cls')[0].shape == (1, 8)
    result = extract(demo_model, loader_factory(batch_size=1), 'backbone')
    batched = extract(demo_model, loader_factory(batch_size=8), 'backbone')
    assert result.features['feat_3'].shape == (20, 128)
    np.testing.assert_allclose(result.features['feat_3'],
                               batched.features['feat_3'], atol=1e-5)


def test_logits_give_predictions_and_loss(demo_model, loader_factory):
    result = extract(demo_model, loader_factory())
    assert result.logits.shape == (20, 10)
    cols = prediction_columns(result.logits, result.labels)
    expected = F.cross_entropy(torch.from_numpy(result.logits).double(),
                               torch.from_numpy(result.labels),
                               reduction='none').numpy()
    np.testing.assert_allclose(cols['loss'], expected, rtol=1e-9)
    assert (cols['pred_label'] == result.labels).mean() > 0.9
    assert np.all((cols['entropy'] >= 0) & (cols['entropy'] <= np.log(10)))
    unknown = prediction_columns(result.logits[:2], np.array([-1, 0]))
    assert np.isnan(unknown['loss'][0]) and not np.isnan(unknown['loss'][1])


@pytest.mark.parametrize('stage, needle', [
    ('layer9', "unknown stage 'layer9': choose one of backbone, neck, "
     'pre_logits or a module name such as'),
    ('data_preprocessor', 'returned DataSample, not tensors'),
])
def test_bad_stage_is_a_clear_error(stage, needle, demo_model,
                                    loader_factory):
    with pytest.raises(UserError, match=needle):
        extract(demo_model, loader_factory(), stage)
    assert no_hooks_left(demo_model)


def test_pre_logits_without_a_head_is_refused(demo_cfg, loader_factory):
    cfg = demo_cfg.model.copy()
    cfg.head = None
    with pytest.raises(UserError, match='pre_logits'):
        extract(build(cfg), loader_factory(), 'pre_logits')


def test_module_that_never_runs_is_named(demo_cfg, loader_factory):
    model = build(demo_cfg.model)
    model.unused = torch.nn.Linear(2, 2)
    with pytest.raises(UserError, match="module 'unused' did not run"):
        extract(model, loader_factory(), 'unused')
    assert no_hooks_left(model)
