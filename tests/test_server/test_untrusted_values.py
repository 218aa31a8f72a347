"""What a run directory or a request holds is data, never trusted.

A served run directory may have been written by someone else (a shared
``work_dirs``, a run copied from elsewhere): its folder names, the values
in ``samples.csv`` and ``neighbors_*.npz``, and any ``.html`` or ``.svg``
in it. Each test runs the real server (uvicorn on loopback, or Chromium
against it) on run directories written at test time:

- run ids stay unambiguous whatever the folders are called;
- malformed values are a 4xx naming the bad field, or the run is listed as
  broken, never an internal error;
"""
import csv
import json
import logging
import os.path as osp

import httpx
import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_server.test_app import N, Served, error, make_run
from tsneviz.rundir import write_json
from tsneviz.server.app import create_app

RUN = 'cfg~tsne_a'
CONFIG = osp.join(REPO, 'configs', 'digits', 'resnet18-slim_digits.py')


def _set_cell(run_dir, column, row, text):
    """Write ``text`` into one cell of a run's samples.csv, as a file
    edited by hand would hold it."""
    path = osp.join(run_dir, 'samples.csv')
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    rows[row + 1][rows[0].index(column)] = text
    with open(path, 'w', newline='') as f:
        csv.writer(f).writerows(rows)


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    """A work dir with one good run whose run.json names real paths."""
    base = str(tmp_path_factory.mktemp('untrusted'))
    root, data = osp.join(base, 'work'), osp.join(base, 'data')
    run_dir = make_run(osp.join(root, 'cfg', 'tsne_a'), data)
    path = osp.join(run_dir, 'run.json')
    with open(path) as f:
        manifest = json.load(f)
    # as a run made by tools/vis_tsne.py records them: absolute paths
    manifest.update(config=CONFIG, cwd=REPO, work_dir=osp.dirname(run_dir))
    write_json(path, manifest)
    return dict(base=base, root=root, data=data, run=run_dir)


@pytest.fixture(scope='module')
def client(tree):
    served = Served(create_app(tree['root'], configs_dir=osp.join(REPO,
                                                                  'configs')))
    with httpx.Client(base_url=served.url, timeout=60) as c:
        yield c
    served.stop()


def _serve(root, **kwargs):
    return Served(create_app(root, **kwargs))


# ---- 6. run ids ----------------------------------------------------------

def test_a_folder_named_like_a_run_id_does_not_take_it(tmp_path, caplog):
    root, data = str(tmp_path / 'work'), str(tmp_path / 'data')
    real = make_run(osp.join(root, 'c1', 'run'), data)
    impostor = make_run(osp.join(root, 'c1~run'), data)
    for folder, created in ((real, 'real'), (impostor, 'impostor')):
        path = osp.join(folder, 'run.json')
        with open(path) as f:
            write_json(path, dict(json.load(f), created=created))
    # the impostor's map differs, so that the points tell them apart
    coords = np.load(osp.join(real, 'tsne_feat_3.npy'))
    np.save(osp.join(impostor, 'tsne_feat_3.npy'), coords + 100)
    served = _serve(root)
    try:
        with caplog.at_level(logging.WARNING, 'tsneviz.server'), \
                httpx.Client(base_url=served.url) as c:
            runs = c.get('/api/runs').json()['runs']
            assert [(r['id'], r['created']) for r in runs] == \
                [('c1~run', 'real')]
            points = c.get('/api/runs/c1~run/points').json()['points']
            assert np.allclose([[p['x'], p['y']] for p in points], coords)
            # the page too is the real run's
            assert c.get('/runs/c1~run/run.json').json()['created'] == 'real'
    finally:
        served.stop()
    warned = [r.getMessage() for r in caplog.records
              if 'c1~run' in r.getMessage()]
    assert len(warned) == 1 and 'rename' in warned[0], warned


# ---- 11. malformed values ------------------------------------------------

@pytest.mark.parametrize('seed', [-1, 2 ** 32, 10 ** 30])
def test_seeds_out_of_range_are_422(client, seed):
    detail = error(client.post(f'/api/runs/{RUN}/splits', json=dict(
        val_ratio=0.25, by='class', seed=seed)), 422)
    assert 'seed' in detail
    detail = error(client.post('/api/jobs', json=dict(
        config='digits/resnet18-slim_digits.py', seed=seed)), 422)
    assert 'seed' in detail


@pytest.mark.parametrize('indices,distances,word', [
    (np.full((N, 4), 99), np.ones((N, 4)), 'outside 0..11'),
    (np.full((N, 4), -1), np.ones((N, 4)), 'outside 0..11'),
    (np.zeros((N, 4)), np.ones((N, 4)), 'indices'),  # floats
    (np.zeros((N, 4), int), np.ones((N, 3)), 'distances'),
    (np.zeros((N, 4), int), np.full((N, 4), np.nan), 'not finite'),
])
def test_stored_neighbours_out_of_range_are_a_4xx(tmp_path, indices,
                                                  distances, word):
    root, data = str(tmp_path / 'work'), str(tmp_path / 'data')
    run_dir = make_run(osp.join(root, 'cfg', 'tsne_a'), data)
    np.savez(osp.join(run_dir, 'neighbors_feat_3.npz'), indices=indices,
             distances=distances, metric=np.array('euclidean'))
    served = _serve(root)
    try:
        with httpx.Client(base_url=served.url) as c:
            r = c.get(f'/api/runs/{RUN}/neighbors/0', params=dict(k=3))
            assert 400 <= r.status_code < 500, r.text
            detail = r.json()['detail']
            assert 'neighbors_feat_3.npz' in detail and word in detail
            assert 'neighbors step again' in detail
            assert tmp_path.as_posix() not in detail
            # splits read the same graph
            r = c.post(f'/api/runs/{RUN}/splits',
                       json=dict(val_ratio=0.25, by='class'))
            assert 400 <= r.status_code < 500, r.text
    finally:
        served.stop()


@pytest.mark.parametrize('column,text', [('index', '1e400'),
                                         ('index', '2.5'),
                                         ('gt_label', '-inf'),
                                         ('pred_label', 'inf'),
                                         ('index', '1e300')])
def test_int_columns_that_are_not_whole_make_the_run_broken(
        tmp_path, column, text):
    root, data = str(tmp_path / 'work'), str(tmp_path / 'data')
    make_run(osp.join(root, 'cfg', 'tsne_a'), data)
    bad = make_run(osp.join(root, 'cfg', 'tsne_bad'), data)
    _set_cell(bad, column, 3, text)
    served = _serve(root)
    try:
        with httpx.Client(base_url=served.url) as c:
            body = c.get('/api/runs').json()
            assert [r['id'] for r in body['runs']] == [RUN]
            (broken, ) = body['broken']
            assert broken['id'] == 'cfg~tsne_bad'
            assert column in broken['error'] and repr(text) in \
                broken['error'] and 'row 4' in broken['error']
            for r in (c.get('/api/runs/cfg~tsne_bad/points'),
                      c.post('/api/runs/cfg~tsne_bad/selections',
                             json=dict(name='x', indices=[100]))):
                # the broken-run answer, naming the column; no internal
                # error (OverflowError before)
                detail = r.json()['detail']
                assert 'broken' in detail and column in detail, detail
                assert 'internal error' not in detail
            assert c.get(f'/api/runs/{RUN}/points').status_code == 200
    finally:
        served.stop()


def test_non_finite_numbers_are_never_a_500(tmp_path):
    root, data = str(tmp_path / 'work'), str(tmp_path / 'data')
    scores = make_run(osp.join(root, 'cfg', 'tsne_a'), data)
    _set_cell(scores, 'score', 0, 'inf')
    _set_cell(scores, 'loss', 1, '-inf')
    coords = make_run(osp.join(root, 'cfg', 'tsne_xy'), data)
    path = osp.join(coords, 'tsne_feat_3.npy')
    np.save(path, np.where(np.eye(N, 2, dtype=bool), np.inf,
                           np.load(path)).astype(np.float32))
    served = _serve(root)
    try:
        with httpx.Client(base_url=served.url) as c:
            r = c.get(f'/api/runs/{RUN}/points')
            assert r.status_code == 200, r.text
            points = r.json()['points']
            # not JSON numbers: sent as null, like an empty cell
            assert points[0]['score'] is None and points[1]['loss'] is None
            assert points[2]['score'] == 0.9
            detail = error(c.get('/api/runs/cfg~tsne_xy/points'), 400)
            assert 'tsne_feat_3.npy' in detail and 'finite' in detail
    finally:
        served.stop()
