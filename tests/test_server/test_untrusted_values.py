"""What a run directory or a request holds is data, never trusted.

A served run directory may have been written by someone else (a shared
``work_dirs``, a run copied from elsewhere): its folder names, the values
in ``samples.csv`` and ``neighbors_*.npz``, and any ``.html`` or ``.svg``
in it. Each test runs the real server (uvicorn on loopback, or Chromium
against it) on run directories written at test time:

- run ids stay unambiguous whatever the folders are called;
"""
import json
import logging
import os.path as osp

import httpx
import numpy as np

from tests.test_server.test_app import Served, make_run
from tsneviz.rundir import write_json
from tsneviz.server.app import create_app

RUN = 'cfg~tsne_a'


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
