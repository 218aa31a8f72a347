"""The server's thumbnails: cut from the run's packed sheets, and the
sheets and their index served under the run directory's rules."""
import io
import json
import os
import os.path as osp

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.test_server.test_app import N, _png, error, make_run
from tsneviz.rundir import Run
from tsneviz.rundir.thumbs import pack_thumbnails, read_packed
from tsneviz.server.app import create_app

RUN = 'cfg~tsne_p'


@pytest.fixture
def packed_run(tmp_path):
    root, data = str(tmp_path / 'work'), str(tmp_path / 'data')
    run_dir = osp.join(root, 'cfg', 'tsne_p')
    make_run(run_dir, data)
    pack_thumbnails(run_dir, Run(run_dir).image_paths, size=8)
    app = create_app(root)
    with TestClient(app, base_url='http://127.0.0.1') as client:
        yield client, run_dir, str(tmp_path)


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert('RGB'))


def test_thumb_is_cut_from_the_sheet(packed_run):
    client, run_dir, _ = packed_run
    run = Run(run_dir)
    packed = read_packed(run_dir)
    for position in (0, 5, N - 1):
        r = client.get(f'/api/runs/{RUN}/images/{position}')
        assert r.status_code == 200 and r.headers['content-type'] == \
            'image/png'
        want = np.asarray(packed.image(position).convert('RGB'))
        np.testing.assert_array_equal(_pixels(r.content), want)
        assert want.shape == (8, 8, 3)  # the pack's size, 16 px shrunk
    # the image is not read again: a changed file still shows the packed
    # thumbnail (the full image is the file as it is now)
    path = run.image_paths[3]
    before = _pixels(client.get(f'/api/runs/{RUN}/images/3').content)
    _png(path, 250)
    thumb = _pixels(client.get(f'/api/runs/{RUN}/images/3').content)
    np.testing.assert_array_equal(thumb, before)
    assert thumb[0, 0, 0] == 3 * 20
    full = client.get(f'/api/runs/{RUN}/images/3', params=dict(size='full'))
    assert _pixels(full.content)[0, 0, 0] == 250


def test_pack_of_other_paths_is_not_used(packed_run):
    client, run_dir, _ = packed_run
    paths = Run(run_dir).image_paths
    pack_thumbnails(run_dir, paths[::-1], size=8)  # not this table's
    r = client.get(f'/api/runs/{RUN}/images/0')
    # made from the image itself, at the explorer's default size
    assert _pixels(r.content).shape == (16, 16, 3)
    assert _pixels(r.content)[0, 0, 0] == 0


def test_unreadable_image_has_no_thumbnail(packed_run):
    client, run_dir, _ = packed_run
    paths = Run(run_dir).image_paths
    with open(paths[2], 'wb') as f:
        f.write(b'not an image')
    pack_thumbnails(run_dir, paths, size=12)
    assert 'not a readable image' in error(
        client.get(f'/api/runs/{RUN}/images/2'), 403)


def test_sheets_and_index_are_served(packed_run):
    client, run_dir, _ = packed_run
    folder = osp.join(run_dir, 'thumbs')
    sheet = client.get(f'/api/runs/{RUN}/thumbs/sheet_0.png')
    assert sheet.status_code == 200
    assert sheet.headers['content-type'] == 'image/png'
    assert sheet.headers['cache-control'] == 'no-cache'
    with open(osp.join(folder, 'sheet_0.png'), 'rb') as f:
        assert sheet.content == f.read()
    index = client.get(f'/api/runs/{RUN}/thumbs/index.json')
    assert index.headers['content-type'].startswith('application/json')
    assert index.json() == json.load(open(osp.join(folder, 'index.json')))
    script = client.get(f'/api/runs/{RUN}/thumbs/index.js')
    assert script.text.startswith('window.__tsneviz_thumbs = ')
    # and under the run's own files, where the page on disk finds them
    assert client.get(f'/runs/{RUN}/thumbs/sheet_0.png').content == \
        sheet.content
    assert 'tools/explore.py' in error(
        client.get(f'/api/runs/{RUN}/thumbs/sheet_7.png'), 404)


@pytest.mark.parametrize('name', ['run.json', 'sheet_0.png.tmp',
                                  '..%2Frun.json', '.tmp_sheet_0.png',
                                  'sheet_-1.png', '..%2F..%2Fsecret.png'])
def test_only_pack_files_are_served(packed_run, name):
    client, _, _ = packed_run
    r = client.get(f'/api/runs/{RUN}/thumbs/{name}')
    assert r.status_code in (404, 422), (name, r.status_code)
    assert not r.content.startswith(b'\x89PNG') and b'n_samples' not in \
        r.content


def test_sheet_linked_out_of_the_run_is_refused(packed_run):
    client, run_dir, base = packed_run
    secret = osp.join(base, 'secret.png')
    _png(secret, 255)
    sheet = osp.join(run_dir, 'thumbs', 'sheet_0.png')
    os.remove(sheet)
    os.symlink(secret, sheet)
    r = client.get(f'/api/runs/{RUN}/thumbs/sheet_0.png')
    assert 'outside' in error(r, 403)


def test_served_page_takes_its_sheets_from_the_api(packed_run):
    client, run_dir, _ = packed_run
    from tsneviz.explorer import write_explorer
    write_explorer(run_dir, k=3, thumb_size=8)
    text = client.get(f'/runs/{RUN}/').text.replace('\\/', '/')
    assert f'"sheet_url":"/api/runs/{RUN}/thumbs/sheet_{{sheet}}.png"' in text
    assert f'"thumbs_script":"/api/runs/{RUN}/thumbs/index.js"' in text
