"""tsneviz.config: loading, precedence, the test dataloader, tsne block."""
import os.path as osp

import pytest
from mmengine.config import Config

from tests.conftest import DEMO_CONFIG, mmpretrain_config
from tsneviz.config import (
    dataloader_config,
    load_config,
    resolve_work_dir,
    tsne_settings,
)
from tsneviz.errors import UserError


def test_cfg_options_override_the_file():
    cfg = load_config(DEMO_CONFIG, {'test_dataloader.batch_size': 3})
    assert cfg.test_dataloader.batch_size == 3


def test_broken_config_is_one_line(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('model = dict(\n')
    with pytest.raises(UserError, match='could not read config') as err:
        load_config(str(bad))
    assert '\n' not in str(err.value)


def test_work_dir_precedence(tmp_path):
    cfg = Config(dict(work_dir='from_file'))
    assert resolve_work_dir(cfg.copy(), 'a/b/x.py', 'cli') == 'cli'
    assert resolve_work_dir(cfg.copy(), 'a/b/x.py') == 'from_file'
    assert resolve_work_dir(Config(), 'a/b/x.py') == osp.join(
        './work_dirs', 'x')


def test_self_supervised_config_needs_test_cfg():
    selfsup = load_config(mmpretrain_config(
        'simclr/simclr_resnet50_16xb256-coslr-200e_in1k.py'))
    with pytest.raises(UserError, match='--test-cfg'):
        dataloader_config(selfsup)
    loader = dataloader_config(selfsup, DEMO_CONFIG,
                               {'test_dataloader.batch_size': 5})
    assert loader.dataset.type == 'CustomDataset'
    assert loader.batch_size == 5  # --cfg-options reach --test-cfg too


def test_tsne_block_and_cli_merge():
    cfg = Config(dict(tsne=dict(perplexity=50.0, backend='sklearn')))
    assert tsne_settings(cfg, {'perplexity': 5.0, 'init': None}) == \
        {'perplexity': 5.0, 'backend': 'sklearn'}
    with pytest.raises(UserError, match="unknown key.*perplexty"):
        tsne_settings(Config(dict(tsne=dict(perplexty=5))), {})
