"""A served run directory runs no code: its config is data, its record of
a trusted checkpoint unpickles nothing.

Real demo runs served by the real app; the hostile config and checkpoint
would each create a marker file if they were run or unpickled.
"""
import hashlib
import json
import os.path as osp
import pickle
import shutil
import subprocess
import sys

import pytest
import torch
from fastapi.testclient import TestClient

from tests.conftest import REPO, make_demo_run


class _Payload:
    """Unpickled, it creates a file: the proof that a pickle was run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


@pytest.fixture(scope='module')
def demo(tmp_path_factory, digits_options):
    work = tmp_path_factory.mktemp('run_code') / 'work'
    run_dir = make_demo_run(work, digits_options, max_num_samples=8,
                            tsne=dict(perplexity=5.0, n_iter=250))
    return str(work), run_dir


def _client(root):
    from tsneviz.server.app import create_app
    client = TestClient(create_app(root), base_url='http://127.0.0.1')
    run_id = client.get('/api/runs').json()['runs'][0]['id']
    return client, run_id


def _hostile_copy(demo, tmp_path, name):
    """A copy of the demo run in a root of its own, to be made hostile."""
    root = tmp_path / name
    run_dir = str(root / 'cfg' / 'tsne_hostile')
    shutil.copytree(demo[1], run_dir)
    return str(root), run_dir


def _place(client, run_id, run_dir):
    from tsneviz.rundir import Run
    with open(Run(run_dir).image_paths[0], 'rb') as f:
        files = {'image': ('a.png', f.read(), 'image/png')}
    return client.post(f'/api/runs/{run_id}/place', files=files)


def test_the_served_config_is_read_as_data(demo, tmp_path):
    # the plain resolved config of a real run places as before
    client, run_id = _client(demo[0])
    assert _place(client, run_id, demo[1]).status_code == 200

    root, run_dir = _hostile_copy(demo, tmp_path, 'config')
    marker = tmp_path / 'config-ran'
    with open(osp.join(run_dir, 'config.py'), 'a') as f:
        f.write(f'\nimport os\nos.system("touch {marker}")\n')
    client, run_id = _client(root)
    reply = _place(client, run_id, run_dir)
    assert 400 <= reply.status_code < 500, reply.text
    detail = reply.json()['detail']
    assert 'never run as Python' in detail and '\n' not in detail
    assert not marker.exists()


def test_a_run_saying_trusted_unpickles_nothing(demo, tmp_path):
    root, run_dir = _hostile_copy(demo, tmp_path, 'pickle')
    marker = tmp_path / 'pickle-ran'
    checkpoint = osp.join(run_dir, 'evil.pth')
    torch.save({'state_dict': {}, 'meta': _Payload(str(marker))},
               checkpoint)
    with open(checkpoint, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    manifest = osp.join(run_dir, 'run.json')
    with open(manifest) as f:
        info = json.load(f)
    info['checkpoint'] = dict(info['checkpoint'], path=checkpoint,
                              sha256=sha, trusted=True)
    with open(manifest, 'w') as f:
        json.dump(info, f)
    client, run_id = _client(root)
    reply = _place(client, run_id, run_dir)
    assert 400 <= reply.status_code < 500, reply.text
    assert '\n' not in reply.json()['detail']
    assert not marker.exists()
    # the tool, likewise, unless the user says they trust the file
    from tsneviz.rundir import Run
    tool = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'neighbors.py'), run_dir,
         '--image', Run(run_dir).image_paths[0]],
        capture_output=True, text=True, cwd=str(tmp_path))
    assert tool.returncode == 2, tool.stderr
    assert not marker.exists()


def test_pickle_payload_is_a_real_payload(tmp_path):
    # the check above can fail: a full unpickle does run the payload
    marker = tmp_path / 'ran'
    pickle.loads(pickle.dumps(_Payload(str(marker))))
    assert marker.exists()
