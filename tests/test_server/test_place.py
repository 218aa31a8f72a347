"""``POST /api/runs/{run}/place``: search by example through the app.

A real demo run (the committed tiny model on the test digits) served by
the real application through FastAPI's test client; the uploads are real
PNG files of the digits.
"""
import os
import os.path as osp

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_demo_run, make_features_run


def _snapshot(folder):
    """Every file of a folder with its size and modification time."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = osp.join(root, name)
            st = os.stat(path)
            found[osp.relpath(path, folder)] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.fixture(scope='module')
def served(tmp_path_factory, digits_options):
    from tsneviz.server.app import create_app

    work = tmp_path_factory.mktemp('place_server') / 'work'
    run_dir = make_demo_run(work, digits_options, max_num_samples=10,
                            tsne=dict(perplexity=8.0, n_iter=300))
    app = create_app(str(work), max_body_bytes=256 * 1024)
    client = TestClient(app, base_url='http://127.0.0.1')
    run_id = client.get('/api/runs').json()['runs'][0]['id']
    return client, run_id, run_dir


def _upload(path):
    with open(path, 'rb') as f:
        return {'image': (osp.basename(path), f.read(), 'image/png')}


def test_place_own_image_writes_nothing(served):
    from tsneviz.rundir import Run

    client, run_id, run_dir = served
    run = Run(run_dir)
    position = 7
    before = _snapshot(run_dir)
    reply = client.post(f'/api/runs/{run_id}/place?k=5',
                        files=_upload(run.image_paths[position]))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    # the image of a sample of the run is its own nearest sample
    assert body['neighbors'][0]['position'] == position
    assert body['neighbors'][0]['distance'] < 1e-3
    assert len(body['neighbors']) == body['k'] == 5
    gt = int(run.labels[position])
    assert body['pred_class'] == run.label_space.model_name(gt)
    assert 0.5 < body['score'] <= 1.0
    assert body['map_vote'] == gt
    # it lands next to where the sample is on the map
    coords = run.coords()
    spot = np.array([body['x'], body['y']])
    gaps = np.linalg.norm(coords - spot, axis=1)
    assert int(gaps.argmin()) == position or \
        gaps[position] < np.sort(gaps)[3], (gaps[position], gaps.min())
    assert body['saved'] is None
    # search by example leaves the run directory as it was
    assert _snapshot(run_dir) == before


def test_place_saved_as_layer(served, digits_root):
    from tsneviz.rundir import Run

    client, run_id, run_dir = served
    image = osp.join(digits_root, 'train', '4',
                     sorted(os.listdir(osp.join(digits_root, 'train',
                                                '4')))[0])
    reply = client.post(f'/api/runs/{run_id}/place?save=uploads',
                        files=_upload(image))
    assert reply.status_code == 200, reply.text
    assert reply.json()['saved'] == 'uploads'
    assert reply.json()['pred_class'] == '4'
    run = Run(run_dir)
    assert run.manifest['placed']['uploads']['n'] == 1
    assert run.has('placed/uploads.csv')
    kept = os.listdir(run.file('placed/uploads.images'))
    assert kept == ['upload.png']


def test_place_refusals(served, tmp_path):
    client, run_id, run_dir = served
    url = f'/api/runs/{run_id}/place'
    not_image = {'image': ('x.png', b'not an image at all', 'image/png')}
    reply = client.post(url, files=not_image)
    assert reply.status_code == 422
    assert 'not an image' in reply.json()['detail']
    assert client.post('/api/runs/nope/place',
                       files=not_image).status_code == 404
    assert client.post(url).status_code == 422  # no file
    # another site's page may not post
    from PIL import Image
    png = tmp_path / 'a.png'
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(png)
    reply = client.post(url, files=_upload(png),
                        headers={'origin': 'http://evil.example'})
    assert reply.status_code == 403
    # the body limit holds for uploads
    big = tmp_path / 'big.png'
    noise = np.random.default_rng(0).integers(0, 255, (400, 400, 3))
    Image.fromarray(noise.astype(np.uint8)).save(big)
    assert os.path.getsize(big) > 256 * 1024
    assert client.post(url, files=_upload(big)).status_code == 413
    assert client.post(url + '?save=../x',
                       files=_upload(png)).status_code == 422
    assert not osp.exists(osp.join(run_dir, 'placed', '..', 'x.csv'))


def test_place_on_a_features_run(tmp_path, digits_root):
    """A run made from plain features has no model to pass an image
    through: one line saying so, nothing written."""
    from tsneviz.server.app import create_app

    run_dir = make_features_run(tmp_path / 'work', digits_root,
                                per_class=5, tsne=dict(perplexity=5.0,
                                                       n_iter=250))
    client = TestClient(create_app(run_dir), base_url='http://127.0.0.1')
    run_id = client.get('/api/runs').json()['runs'][0]['id']
    image = osp.join(digits_root, 'val', '1',
                     sorted(os.listdir(osp.join(digits_root, 'val',
                                                '1')))[0])
    before = _snapshot(run_dir)
    reply = client.post(f'/api/runs/{run_id}/place', files=_upload(image))
    assert reply.status_code == 422
    detail = reply.json()['detail']
    assert 'plain features' in detail and '\n' not in detail
    assert '/tmp' not in detail
    assert _snapshot(run_dir) == before
