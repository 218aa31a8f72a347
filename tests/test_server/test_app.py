"""tools/serve.py and tsneviz.server against a real uvicorn on loopback.

Runs are written by hand (run.json, samples.csv, features, coordinates and
small PNGs) so the HTTP side is tested in seconds; one job makes a real
extraction + t-SNE run of the digits demo end to end.
"""
import numbers
import os
import os.path as osp
import socket
import subprocess
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import ValidationError

from tests.conftest import DEMO_CHECKPOINT, REPO
from tsneviz.exporters.selection import read_indices
from tsneviz.params import Array, Interval, Options, validate_params
from tsneviz.reduction.fields import LayoutField, field
from tsneviz.rundir import write_json, write_table
from tsneviz.server.app import create_app
from tsneviz.server.context import ServerDep
from tsneviz.server.layout import (
    MAX_THREADS,
    TsneIn,
    offered_fields,
    tsne_model,
)

N_CLASSES, PER_CLASS = 3, 4
N = N_CLASSES * PER_CLASS
TOKEN = 's3cret-token'
MAX_BODY = 64 * 1024


def _png(path, value):
    from PIL import Image
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(np.full((16, 16), value, np.uint8)).save(path)


def make_run(folder, data_root, img_paths=None, clustered=False):
    """A complete run directory of N samples, 3 classes, in ``folder``."""
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    if img_paths is None:
        img_paths = []
        for i, label in enumerate(labels):
            path = osp.join(data_root, 'val', str(label), f'{i}.png')
            _png(path, 20 * i)
            img_paths.append(path)
    centers = rng.normal(size=(N_CLASSES, 8)) * 5
    feats = (centers[labels] + rng.normal(size=(N, 8))).astype(np.float32)
    np.save(osp.join(folder, 'feat_3.npy'), feats)
    coords = rng.normal(size=(N, 2)).astype(np.float32)
    np.save(osp.join(folder, 'tsne_feat_3.npy'), coords)
    pred = labels.copy()
    pred[0] = 1  # one mistake
    columns = dict(index=np.arange(100, 100 + N), img_path=img_paths,
                   gt_label=labels, gt_class=labels, pred_label=pred,
                   pred_class=pred, score=np.full(N, 0.9),
                   entropy=np.full(N, 0.1), loss=np.linspace(0, 1, N),
                   feat_3_x=coords[:, 0], feat_3_y=coords[:, 1])
    if clustered:
        columns['cluster'] = labels
        write_table(osp.join(folder, 'clusters.csv'), dict(
            rank=[1, 2, 3], cluster=[0, 1, 2], size=[4, 4, 4],
            purity=[1.0, 1.0, 1.0], dominant_class=['0', '1', '2'],
            dominant_share=[1.0, 1.0, 1.0], classes=['0:4', '1:4', '2:4'],
            error_rate=[0.25, 0.0, 0.0], mean_loss=[0.1, 0.4, 0.8],
            top_confusions=['0->1:1', '', '']))
    write_table(osp.join(folder, 'samples.csv'), columns)
    write_json(osp.join(folder, 'run.json'), dict(
        config='/x/cfg.py', checkpoint=None, n_samples=N, seed=0,
        created='2026-11-23T15:03:48+0000',
        classes=[str(c) for c in range(N_CLASSES)], data_root=data_root,
        data_prefix=osp.join(data_root, 'val'),
        extraction=dict(keys=['feat_3'], stage='neck', token_pool='mean',
                        feature_key='k'),
        outputs=['feat_3.npy', 'samples.csv']))
    return folder


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    """A work dir with good, clustered, hostile and incomplete runs."""
    base = tmp_path_factory.mktemp('serve')
    root, data = str(base / 'work'), str(base / 'data')
    outside = str(base / 'outside')
    _png(osp.join(outside, 'secret.png'), 255)
    make_run(osp.join(root, 'cfg', 'tsne_a'), data)
    make_run(osp.join(root, 'cfg', 'tsne_b'), data, clustered=True)
    # rows 0..2 try to leave the dataset root three ways
    os.makedirs(osp.join(data, 'val'), exist_ok=True)
    link = osp.join(data, 'val', 'link.png')
    os.symlink(osp.join(outside, 'secret.png'), link)
    good = [osp.join(data, 'val', '1', f'{i}.png') for i in range(N)]
    hostile = [osp.join(outside, 'secret.png'),
               osp.join(data, 'val', '..', '..', 'outside', 'secret.png'),
               link, '../outside/secret.png'] + good[4:]
    make_run(osp.join(root, 'cfg', 'tsne_evil'), data, img_paths=hostile)
    os.makedirs(osp.join(root, 'cfg', 'tsne_incomplete'))
    with open(osp.join(root, 'cfg', 'tsne_a', 'index.html'), 'w') as f:
        f.write('<html>explorer a</html>')
    os.makedirs(osp.join(root, 'cfg', 'tsne_a', 'thumbs'))
    _png(osp.join(root, 'cfg', 'tsne_a', 'thumbs', '0.png'), 7)
    with open(osp.join(base, 'secret.txt'), 'w') as f:
        f.write('secret')
    # a configs dir whose only config is a symlink to outside it
    configs = base / 'configs'
    configs.mkdir()
    with open(osp.join(outside, 'evil.py'), 'w') as f:
        f.write('raise SystemExit("must never run")\n')
    os.symlink(osp.join(outside, 'evil.py'), str(configs / 'evil.py'))
    return dict(base=str(base), root=root, data=data, outside=outside,
                configs=str(configs))


class Served:
    """uvicorn in a thread on a free loopback port."""

    def __init__(self, app):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.url = f'http://127.0.0.1:{self.sock.getsockname()[1]}'
        self.server = uvicorn.Server(uvicorn.Config(
            app, log_level='warning', access_log=False))
        self.thread = threading.Thread(
            target=self.server.run, kwargs=dict(sockets=[self.sock]),
            daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            assert time.time() < deadline, 'uvicorn did not start'
            time.sleep(0.05)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope='module')
def server(tree, digits_root):
    served = Served(create_app(
        tree['root'], configs_dir=osp.join(REPO, 'configs'),
        checkpoints_dir=osp.dirname(DEMO_CHECKPOINT),
        max_body_bytes=MAX_BODY,
        # jobs read the digits; the hand-made runs' images are in data
        data_dirs=[digits_root, tree['data']]))
    with httpx.Client(base_url=served.url, timeout=120) as client:
        yield client
    served.stop()


@pytest.fixture(scope='module')
def locked(tree):
    served = Served(create_app(tree['root'], configs_dir=tree['configs'],
                               token=TOKEN))
    with httpx.Client(base_url=served.url, timeout=60) as client:
        yield client
    served.stop()


A, B, EVIL = 'cfg~tsne_a', 'cfg~tsne_b', 'cfg~tsne_evil'


def error(response, status):
    assert response.status_code == status, response.text
    detail = response.json()['detail']
    assert isinstance(detail, str) and detail
    return detail


# ---- runs, points, neighbours, clusters ---------------------------------

def test_lists_complete_runs_only(server):
    r = server.get('/api/runs')
    assert r.status_code == 200
    runs = {x['id']: x for x in r.json()['runs']}
    assert set(runs) == {A, B, EVIL}  # tsne_incomplete has no run.json
    assert runs[A]['n_samples'] == N and runs[A]['keys'] == ['feat_3']
    assert runs[B]['clustered'] and not runs[A]['clustered']
    assert runs[A]['has_explorer'] and runs[A]['explorer_url'] == \
        f'/runs/{A}/'


def test_points_page_through_the_run(server):
    r = server.get(f'/api/runs/{A}/points', params=dict(offset=0, limit=5))
    body = r.json()
    assert r.status_code == 200 and body['total'] == N
    assert body['key'] == 'feat_3' and len(body['points']) == 5
    first = body['points'][0]
    assert first['position'] == 0 and first['index'] == 100
    assert first['gt_class'] == '0' and first['pred_class'] == '1'
    assert isinstance(first['x'], float) and first['z'] is None
    assert first['cluster'] is None
    rest = server.get(f'/api/runs/{A}/points',
                      params=dict(offset=5, limit=100)).json()['points']
    assert [p['position'] for p in rest] == list(range(5, N))
    assert server.get(f'/api/runs/{B}/points').json()['points'][5][
        'cluster'] == 1
    past = server.get(f'/api/runs/{A}/points', params=dict(offset=1000))
    assert past.json()['points'] == []
    assert 'feat_9' in error(server.get(f'/api/runs/{A}/points',
                                        params=dict(key='feat_9')), 422)
    error(server.get(f'/api/runs/{A}/points', params=dict(limit=10 ** 6)),
          422)
    error(server.get(f'/api/runs/{A}/points', params=dict(offset=-1)), 422)


def test_points_match_the_run_coordinates(server, tree):
    coords = np.load(osp.join(tree['root'], 'cfg', 'tsne_a',
                              'tsne_feat_3.npy'))
    points = server.get(f'/api/runs/{A}/points').json()['points']
    got = np.array([[p['x'], p['y']] for p in points])
    assert np.allclose(got, coords)


def test_neighbors_by_position(server):
    r = server.get(f'/api/runs/{A}/neighbors/5', params=dict(k=3))
    body = r.json()
    assert r.status_code == 200 and body['position'] == 5
    assert len(body['neighbors']) == 3
    # well separated classes: sample 5 (class 1) has class-1 neighbours
    assert {n['gt_label'] for n in body['neighbors']} == {1}
    assert 5 not in [n['position'] for n in body['neighbors']]
    assert all(n['index'] == n['position'] + 100 for n in body['neighbors'])


def test_neighbors_bad_input(server):
    assert 'out of range' in error(
        server.get(f'/api/runs/{A}/neighbors/{N}'), 404)
    error(server.get(f'/api/runs/{A}/neighbors/-1'), 404)
    assert 'smaller k' in error(
        server.get(f'/api/runs/{A}/neighbors/0', params=dict(k=N)), 422)
    error(server.get(f'/api/runs/{A}/neighbors/0', params=dict(k=0)), 422)
    error(server.get(f'/api/runs/{A}/neighbors/abc'), 422)


def test_unknown_run_is_404(server):
    for path in ('points', 'neighbors/0', 'clusters', 'images/0',
                 'selections'):
        assert 'unknown run' in error(
            server.get(f'/api/runs/nope/{path}'), 404)
    # the incomplete run is not a run
    error(server.get('/api/runs/cfg~tsne_incomplete/points'), 404)


def test_clusters(server):
    rows = server.get(f'/api/runs/{B}/clusters').json()['clusters']
    assert [r['cluster'] for r in rows] == [0, 1, 2]
    assert rows[0]['top_confusions'] == '0->1:1'
    assert rows[1]['top_confusions'] is None and rows[2]['mean_loss'] == 0.8
    assert 'not clustered' in error(server.get(f'/api/runs/{A}/clusters'),
                                    404)


# ---- images ---------------------------------------------------------------

def test_images_thumb_and_full(server, tree):
    thumb = server.get(f'/api/runs/{A}/images/3')
    assert thumb.status_code == 200
    assert thumb.headers['content-type'] == 'image/png'
    assert thumb.content[:8] == b'\x89PNG\r\n\x1a\n'
    full = server.get(f'/api/runs/{A}/images/3', params=dict(size='full'))
    with open(osp.join(tree['data'], 'val', '0', '3.png'), 'rb') as f:
        assert full.content == f.read()
    error(server.get(f'/api/runs/{A}/images/3', params=dict(size='huge')),
          422)
    error(server.get(f'/api/runs/{A}/images/{N}'), 404)


@pytest.mark.parametrize('row,how', [(0, 'absolute path outside'),
                                     (1, '.. out of the root'),
                                     (2, 'symlink pointing out'),
                                     (3, 'relative path with ..')])
def test_images_outside_the_dataset_root_are_refused(server, row, how):
    for size in ('thumb', 'full'):
        r = server.get(f'/api/runs/{EVIL}/images/{row}',
                       params=dict(size=size))
        assert 'outside' in error(r, 403), how
        assert b'\x89PNG' not in r.content
    # the rows that stay inside are served
    assert server.get(f'/api/runs/{EVIL}/images/5').status_code == 200


def test_dot_dot_in_path_parameters(server):
    for url in ('/api/runs/..%2F..%2Fsecret.txt/points',
                '/api/runs/../points', '/api/runs/..%2Fcfg~tsne_a/points',
                f'/api/runs/{A}%2F..%2F..%2F..%2Fsecret.txt/points',
                '/runs/..%2F..%2Fsecret.txt/'):
        r = server.get(url)
        assert r.status_code == 404, url
        assert r.json()['detail'] and r.text != 'secret'
    for url in (f'/runs/{A}/..%2F..%2F..%2Fsecret.txt',
                f'/runs/{A}/thumbs%2F..%2F..%2F..%2F..%2Fsecret.txt',
                f'/runs/{A}/%2Fetc%2Fpasswd'):
        r = server.get(url)
        assert r.status_code == 403, (url, r.text)
        assert r.text != 'secret'


# ---- explorer page --------------------------------------------------------

def test_explorer_page_and_its_files(server):
    r = server.get(f'/runs/{A}', follow_redirects=False)
    assert r.status_code == 307 and r.headers['location'] == f'/runs/{A}/'
    page = server.get(f'/runs/{A}/')
    assert page.status_code == 200 and 'explorer a' in page.text
    assert page.headers['content-type'].startswith('text/html')
    thumb = server.get(f'/runs/{A}/thumbs/0.png')
    assert thumb.status_code == 200 and thumb.content[:4] == b'\x89PNG'
    error(server.get(f'/runs/{A}/thumbs/missing.png'), 404)
    error(server.get('/runs/nope/'), 404)


def test_explorer_page_made_on_demand(server, tree, monkeypatch):
    calls = []

    def write_explorer(run_dir, key=None, **kwargs):
        calls.append(run_dir)
        path = osp.join(run_dir, 'index.html')
        with open(path, 'w') as f:
            f.write('<html>made on demand</html>')
        return path

    fake = types.ModuleType('tsneviz.explorer')
    fake.write_explorer = write_explorer
    monkeypatch.setitem(sys.modules, 'tsneviz.explorer', fake)
    page = server.get(f'/runs/{B}/')
    assert page.status_code == 200 and 'made on demand' in page.text
    assert server.get(f'/runs/{B}/').status_code == 200
    assert len(calls) == 1  # the second request served the file


# ---- selections -----------------------------------------------------------

def test_selection_saved_and_listed(server, tree):
    body = dict(name='odd ones', label='seven', indices=[101, 105, 101],
                note='looks like a 7')
    r = server.post(f'/api/runs/{A}/selections', json=body)
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved['indices'] == [101, 105] and saved['label'] == 'seven'
    listed = server.get(f'/api/runs/{A}/selections').json()['selections']
    summary = {k: v for k, v in saved.items() if k != 'indices'}
    assert dict(summary, n_indices=2) in listed
    one = server.get(f'/api/runs/{A}/selections/{saved["id"]}')
    assert one.status_code == 200 and one.json() == saved
    csv_path = osp.join(tree['root'], 'cfg', 'tsne_a', saved['file'])
    assert read_indices(csv_path) == [101, 105]  # export_selection reads it
    assert not [f for f in os.listdir(osp.dirname(csv_path))
                if f.startswith('.tmp_')]


def test_selection_bad_input(server):
    url = f'/api/runs/{A}/selections'
    assert '999' in error(server.post(url, json=dict(
        name='x', indices=[999])), 422)
    error(server.post(url, json=dict(name='x', indices=[])), 422)
    error(server.post(url, json=dict(indices=[100])), 422)
    error(server.post(url, json=dict(name='x', indices=[100], extra=1)), 422)
    assert 'malformed JSON' in error(server.post(
        url, content=b'{"name": "x", "indices": [1',
        headers={'content-type': 'application/json'}), 422)


def test_body_too_large_is_413(server):
    url = f'/api/runs/{A}/selections'
    big = dict(name='big', indices=[100] * (MAX_BODY // 4))
    assert 'too large' in error(server.post(url, json=big), 413)

    def chunks():  # no Content-Length: chunked transfer
        yield b'{"name": "big", "indices": ['
        for _ in range(MAX_BODY // 1000 + 2):
            yield b'100,' * 250
        yield b'100]}'

    error(server.post(url, content=chunks(),
                      headers={'content-type': 'application/json'}), 413)


def test_fifty_concurrent_selections_are_all_kept(server, tree):
    # a run of its own, so that other tests' selections do not interfere
    make_run(osp.join(tree['root'], 'cfg', 'tsne_many'), tree['data'])
    url = '/api/runs/cfg~tsne_many/selections'

    def post(i):
        return server.post(url, json=dict(name=f'sel {i}',
                                          indices=[100 + i % N]))

    with ThreadPoolExecutor(16) as pool:
        statuses = [r.status_code for r in pool.map(post, range(50))]
    assert statuses == [201] * 50
    listed = server.get(url).json()['selections']
    assert sorted(s['name'] for s in listed) == \
        sorted(f'sel {i}' for i in range(50))
    assert len({s['id'] for s in listed}) == 50


# ---- splits ---------------------------------------------------------------

def test_splits_like_make_splits(server, tree):
    r = server.post(f'/api/runs/{A}/splits',
                    json=dict(val_ratio=0.25, by='class'))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body['n_train'] + body['n_val'] == N and body['n_val'] == 3
    # named relative to the run directory, not by server path
    assert body['train'] == 'splits/train.txt'
    run_dir = osp.join(tree['root'], 'cfg', 'tsne_a')
    assert osp.isfile(osp.join(run_dir, body['train']))
    assert osp.isfile(osp.join(run_dir, body['val']))
    by_cluster = server.post(f'/api/runs/{B}/splits',
                             json=dict(val_ratio=0.25))
    assert by_cluster.status_code == 200, by_cluster.text
    assert 'cluster' in error(server.post(f'/api/runs/{A}/splits', json=dict(
        val_ratio=0.25, by='cluster')), 400)
    error(server.post(f'/api/runs/{A}/splits', json=dict(val_ratio=1.5)),
          422)
    error(server.post(f'/api/runs/{A}/splits', json=dict(
        val_ratio=0.2, out_dir='/tmp/elsewhere')), 422)


# ---- jobs -----------------------------------------------------------------

@pytest.mark.parametrize('config', ['../tools/vis_tsne.py',
                                    '/etc/passwd',
                                    'digits/../../tests/conftest.py'])
def test_job_config_outside_configs_dir_is_refused(server, config):
    detail = error(server.post('/api/jobs', json=dict(config=config)), 403)
    assert 'configs directory' in detail


def test_job_config_symlink_out_of_configs_dir_is_refused(locked):
    r = locked.post('/api/jobs', json=dict(config='evil.py'),
                    headers={'authorization': f'Bearer {TOKEN}'})
    assert 'outside the configs directory' in error(r, 403)


@pytest.mark.parametrize('checkpoint', ['../resnet/x.pth', DEMO_CHECKPOINT,
                                        '../../tests/conftest.py'])
def test_job_checkpoint_outside_its_dir_is_refused(server, checkpoint):
    r = server.post('/api/jobs', json=dict(
        config='digits/resnet18-slim_digits.py', checkpoint=checkpoint))
    assert 'checkpoints directory' in error(r, 403)


def test_job_bad_requests(server):
    error(server.post('/api/jobs', json=dict(config='digits/none.py')), 400)
    assert 'custom_imports' in error(server.post('/api/jobs', json=dict(
        config='digits/resnet18-slim_digits.py',
        cfg_options={'custom_imports': 'os'})), 403)
    error(server.post('/api/jobs', json=dict(
        config='digits/resnet18-slim_digits.py', trust_checkpoint=True)),
        422)
    error(server.get('/api/jobs/nope'), 404)


def test_job_layout_bound_of_the_reducer_refused_at_submission(
        server, digits_options):
    # the reducer needs early_exaggeration >= 1: the job must not be
    # queued only to fail in its process
    before = server.get('/api/jobs').json()['jobs']
    detail = error(server.post('/api/jobs', json=dict(
        config='digits/resnet18-slim_digits.py', max_num_samples=3,
        tsne=dict(early_exaggeration=0.5), cfg_options=digits_options)),
        422)
    assert 'tsne.early_exaggeration' in detail
    assert server.get('/api/jobs').json()['jobs'] == before


@pytest.mark.parametrize('name', [f.name for f in offered_fields()])
def test_job_layout_field_is_never_looser_than_the_reducer(name):
    row = {name: list(field(name).constraints)}
    accepted = 0
    for value in (-2, -1, 0, 0.5, 1, 2, 3, 4, 249, 250, 1024, 1025, 10_000,
                  10_001, 'auto', 'pca', 'spectral', 'cosine', 'sklearn',
                  'nope'):
        try:
            TsneIn(**{name: value})
        except ValidationError:
            continue
        accepted += 1
        validate_params({name: value}, row, 'reducer')  # must not raise
    assert accepted, f'{name}: no value accepted at all'


def test_job_layout_model_follows_the_reducers_declaration():
    def declared(name, *row):
        return LayoutField(name, row, {'tsne': None}, ('tsne',), 'help')

    model = tsne_model([declared('angle', Interval(numbers.Real, 0.2, 0.8)),
                        declared('n_jobs', Interval(numbers.Integral, -1)),
                        declared('init', Options(['pca']), Array(2))])
    assert model(angle=0.5, init='pca').angle == 0.5
    for bad in (dict(angle=0.9), dict(angle=0.1), dict(init='random'),
                dict(init=[[0.0, 0.0]]), dict(perplexity=5.0)):
        with pytest.raises(ValidationError):
            model(**bad)
    # the server's caps apply on top of the reducer's -1 (all cores)
    assert model(n_jobs=MAX_THREADS).n_jobs == MAX_THREADS
    for threads in (-1, 0, MAX_THREADS + 1):
        with pytest.raises(ValidationError):
            model(n_jobs=threads)


def test_a_new_router_reaches_the_server_state(tree):
    # what the README's "adding a route" shows: a router in its own
    # module gets the server's state through the ServerDep dependency
    router = APIRouter()

    @router.get('/api/runs/{run}/size')
    def run_size(run: str, srv: ServerDep):
        return {'run': run, 'n_samples': len(srv.run(run))}

    app = create_app(tree['root'])
    app.include_router(router)
    client = TestClient(app, base_url='http://127.0.0.1')
    assert client.get(f'/api/runs/{A}/size').json() == \
        {'run': A, 'n_samples': N}
    assert 'unknown run' in error(client.get('/api/runs/nope/size'), 404)


@pytest.mark.slow
def test_job_runs_end_to_end(server, tree, digits_options, monkeypatch):
    r = server.post('/api/jobs', json=dict(
        config='digits/resnet18-slim_digits.py',
        checkpoint=osp.basename(DEMO_CHECKPOINT), max_num_samples=3,
        tsne=dict(perplexity=5.0, n_iter=250), cfg_options=digits_options))
    assert r.status_code == 202, r.text
    job = r.json()
    assert job['state'] in ('queued', 'running')
    deadline = time.time() + 540
    while job['state'] in ('queued', 'running'):
        assert time.time() < deadline, job
        time.sleep(1)
        job = server.get(f'/api/jobs/{job["id"]}').json()
    assert job['state'] == 'done', job
    # relative to the server root, never a server path
    run_dir = osp.join(tree['root'], job['run_dir'])
    assert not osp.isabs(job['run_dir'])
    assert osp.isfile(osp.join(run_dir, 'run.json'))
    assert job['run'].startswith('resnet18-slim_digits~tsne_')
    assert job['run'] in [x['id'] for x in
                          server.get('/api/runs').json()['runs']]
    points = server.get(f'/api/runs/{job["run"]}/points').json()
    assert points['total'] == 30  # 3 per class, 10 classes
    image = server.get(f'/api/runs/{job["run"]}/images/0')
    assert image.status_code == 200
    # the explorer page is made on first visit, full images from the API
    page = server.get(f'/runs/{job["run"]}/')
    assert page.status_code == 200, page.text[:500]
    assert f'/api/runs/{job["run"]}/images/{{position}}?size=full' in \
        page.text.replace('\\/', '/')
    assert osp.isfile(osp.join(run_dir, 'index.html'))
    thumb = server.get(f'/runs/{job["run"]}/thumbs/sheet_0.png')
    assert thumb.status_code == 200 and thumb.content[:4] == b'\x89PNG'


def test_failed_job_reports_its_error(server, digits_root):
    r = server.post('/api/jobs', json=dict(
        config='digits/resnet18-slim_digits.py', max_num_samples=3,
        cfg_options={'test_dataloader.dataset.data_root':
                     osp.join(digits_root, 'no_data'),
                     'test_dataloader.num_workers': 0,
                     'test_dataloader.persistent_workers': False}))
    assert r.status_code == 202, r.text
    job = r.json()
    deadline = time.time() + 300
    while job['state'] in ('queued', 'running'):
        assert time.time() < deadline, job
        time.sleep(0.5)
        job = server.get(f'/api/jobs/{job["id"]}').json()
    assert job['state'] == 'failed' and job['error'], job
    assert job['run'] is None and 'Traceback' not in job['error']
    # the data folder is named by its label, not its path
    assert digits_root not in job['error'], job['error']


# ---- token and host ------------------------------------------------------

def test_token_required(locked):
    assert 'token' in error(locked.get('/api/runs'), 401)
    error(locked.get('/api/runs', headers={'authorization': 'Bearer no'}),
          401)
    error(locked.get('/openapi.json'), 401)
    ok = locked.get('/api/runs', headers={'authorization':
                                          f'Bearer {TOKEN}'})
    assert ok.status_code == 200 and len(ok.json()['runs']) >= 3
    # not in an API URL: it would end up in logs
    error(locked.get('/api/runs', params=dict(token=TOKEN)), 401)
    error(locked.post(f'/api/runs/{A}/selections', json=dict(
        name='x', indices=[100])), 401)


def test_token_in_page_url_sets_a_cookie(tree):
    served = Served(create_app(tree['root'], token=TOKEN))
    try:
        with httpx.Client(base_url=served.url) as client:
            error(client.get(f'/runs/{A}/'), 401)
            error(client.get(f'/runs/{A}/', params=dict(token='bad')), 401)
            page = client.get(f'/runs/{A}/', params=dict(token=TOKEN))
            assert page.status_code == 200
            assert 'HttpOnly' in page.headers['set-cookie']
            # the page's own requests now carry the cookie
            assert client.get(f'/runs/{A}/thumbs/0.png').status_code == 200
            assert client.get(f'/api/runs/{A}/images/0').status_code == 200
            # but a POST needs the header (no cross-site form riding on it)
            error(client.post(f'/api/runs/{A}/selections',
                              json=dict(name='x', indices=[100])), 401)
    finally:
        served.stop()


def test_foreign_host_header_refused_without_token(server):
    r = server.get('/api/runs', headers={'host': 'evil.example:8000'})
    assert 'host' in error(r, 421)


def test_openapi_spec(server):
    spec = server.get('/openapi.json').json()
    paths = spec['paths']
    for path in ('/api/runs', '/api/runs/{run}/points',
                 '/api/runs/{run}/neighbors/{index}',
                 '/api/runs/{run}/clusters', '/api/runs/{run}/images/{index}',
                 '/api/runs/{run}/selections', '/api/runs/{run}/splits',
                 '/api/jobs', '/api/jobs/{job_id}'):
        assert path in paths, path
    assert {'SelectionIn', 'Points', 'JobIn', 'Job', 'Error'} <= \
        set(spec['components']['schemas'])


# ---- CLI ------------------------------------------------------------------

def test_cli_refuses_public_host_without_token(tmp_path):
    env = dict(os.environ)
    env.pop('TSNEVIZ_TOKEN', None)
    r = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'serve.py'),
                        str(tmp_path), '--host', '0.0.0.0'],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), r.stderr
    assert '--token' in lines[0] and 'Traceback' not in r.stderr
