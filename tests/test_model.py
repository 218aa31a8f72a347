"""Real mmpretrain configs, unmodified, with random weights on digit images.

Only the dataset is swapped for the digits folder (no network, so no
CIFAR-10 or ImageNet); models, preprocessors and test pipelines are the
configs' own.
"""
import json
import os.path as osp

import numpy as np
import pytest

from tests.conftest import DEMO_CONFIG, REPO, mmpretrain_config
from tsneviz.apis import run_vis_tsne
from tsneviz.config import load_config

LOAD = dict(type='LoadImageFromFile')


def digits_dataset(root, pipeline=None):
    dataset = dict(_delete_=True, type='CustomDataset', data_root=root,
                   data_prefix='val')
    if pipeline is not None:
        dataset['pipeline'] = pipeline
    return dataset


CASES = {
    # CNN on 32x32, (N, C, H, W) features pooled; CIFAR's pipeline reads
    # arrays, so images are loaded first
    'resnet18-cifar10': ('resnet/resnet18_8xb16_cifar10.py',
                         [LOAD, dict(type='PackInputs')], None,
                         {'feat_3': 512}),
    # ViT with its ImageNet test pipeline (resize + crop to 224)
    'deit-tiny': ('deit/deit-tiny_4xb256_in1k.py', 'keep', None,
                  {'feat_11': 192}),
    # a mobile CNN with no stage names of its own
    'mobilenet-v2': ('mobilenet_v2/mobilenet-v2_8xb32_in1k.py', 'keep', None,
                     {'feat_7': 1280}),
    # self-supervised: no test_dataloader, so --test-cfg
    'simclr': ('simclr/simclr_resnet50_16xb256-coslr-200e_in1k.py', None,
               DEMO_CONFIG, {'feat_3': 2048}),
}


@pytest.mark.parametrize('case', list(CASES))
def test_unmodified_config_runs_end_to_end(case, tmp_path, digits_root):
    relative, pipeline, test_cfg, expected = CASES[case]
    config = mmpretrain_config(relative)
    options = {'test_dataloader.num_workers': 0,
               'test_dataloader.batch_size': 8}
    if test_cfg is None:
        cfg = load_config(config)
        keep = cfg.test_dataloader.dataset.get('pipeline')
        options['test_dataloader.dataset'] = digits_dataset(
            digits_root, keep if pipeline == 'keep' else pipeline)
    else:
        options['test_dataloader.dataset.data_root'] = digits_root
    run_dir = run_vis_tsne(config, None, analysis=(), work_dir=str(tmp_path),
                           test_cfg=test_cfg, cfg_options=options,
                           max_num_samples=2, show_progress=False,
                           tsne=dict(perplexity=5.0, n_iter=250))
    manifest = json.load(open(osp.join(run_dir, 'run.json')))
    assert manifest['extraction']['keys'] == list(expected)
    for key, channels in expected.items():
        feats = np.load(osp.join(run_dir, f'{key}.npy'))
        assert feats.shape == (20, channels)
        assert np.isfinite(feats).all() and feats.std() > 0
    assert manifest['extraction']['has_logits'] == (test_cfg is None)


@pytest.mark.parametrize('relative', [
    'configs/resnet/resnet18_cifar10_tsne.py',
    'configs/resnet/resnet50_cifar10_tsne.py',
    'configs/vit/vit-base-p16_in1k_tsne.py',
    'configs/digits/resnet18-slim_digits.py',
])
def test_example_configs_build_their_models(relative):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    cfg = load_config(osp.join(REPO, relative))
    assert cfg.tsne.backend == 'opentsne'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    assert hasattr(model, 'extract_feat')
