"""Multi-process extraction: torchrun with 2 CPU ranks (gloo)."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import DEMO_CHECKPOINT, DEMO_CONFIG, REPO


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.dist
@pytest.mark.slow
def test_two_ranks_equal_one_process(tmp_path, digits_root):
    common = ['--checkpoint', DEMO_CHECKPOINT, '--max-num-samples', '13',
              '--perplexity', '10', '--n-iter', '300', '--no-cache',
              '--device', 'cpu', '--batch-size', '8', '--cfg-options',
              f'test_dataloader.dataset.data_root={digits_root}',
              'test_dataloader.num_workers=0']
    env = dict(os.environ, PORT=str(free_port()), PYTHON=sys.executable)
    dist = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'dist_vis_tsne.sh'), DEMO_CONFIG,
         '2', '--work-dir', str(tmp_path / 'dist'), *common],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert dist.returncode == 0, dist.stderr[-3000:]
    single = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'vis_tsne.py'), DEMO_CONFIG,
         '--work-dir', str(tmp_path / 'single'), *common],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    dist_dir = dist.stdout.strip().splitlines()[-1]
    single_dir = single.stdout.strip().splitlines()[-1]
    manifest = json.load(open(osp.join(dist_dir, 'run.json')))
    assert manifest['extraction']['world_size'] == 2
    # 130 samples over 2 ranks and batches of 8: uneven shards, padding
    a = np.load(osp.join(dist_dir, 'feat_3.npy'))
    b = np.load(osp.join(single_dir, 'feat_3.npy'))
    assert a.shape == b.shape == (130, 128)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.load(osp.join(dist_dir, 'logits.npy')),
                               np.load(osp.join(single_dir, 'logits.npy')),
                               atol=1e-5)
    with open(osp.join(dist_dir, 'samples.csv')) as f1, \
            open(osp.join(single_dir, 'samples.csv')) as f2:
        rows_a = [r.split(',')[:4] for r in f1.read().splitlines()]
        rows_b = [r.split(',')[:4] for r in f2.read().splitlines()]
    assert rows_a == rows_b
    # only rank 0 wrote a run directory
    assert len(os.listdir(tmp_path / 'dist')) == 1
