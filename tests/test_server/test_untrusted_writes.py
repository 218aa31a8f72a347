"""Writes the server makes, and the jobs it starts, on an untrusted root.

A served run may have been written by someone else, who can plant a
symlink as one of its folders: every POST (selections, splits, saved
placements), the explorer page made on first visit, the start-up tidying
of selections, the job folders and the server's state folder must then
refuse to write (403) and leave the link's target as it was. A saved
placement never replaces a layer, and a run holds a bounded number of
them. A job's dataset is a local path inside ``--data-dir`` by the rules
the worker reads it with (no ``~``, no URL), checked again by the worker
right before it reads. Each test uses the real application (FastAPI's
test client) on run directories written at test time; the worker test
starts the real worker process.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import REPO, make_demo_run
from tests.test_server.test_app import make_run
from tsneviz.server.app import create_app
from tsneviz.server.jobspec import check_data_again
from tsneviz.server.routes.place import MAX_LAYERS
from tsneviz.server.security import Forbidden

CONFIGS = osp.join(REPO, 'configs')
DEMO = 'digits/resnet18-slim_digits.py'
# a selection id as the server makes them (selections._ID)
SELECTION = '20260101T000000000000_0123456789ab'


def _client(root, **kwargs):
    return TestClient(create_app(str(root), **kwargs),
                      base_url='http://127.0.0.1')


def _run_id(client):
    return client.get('/api/runs').json()['runs'][0]['id']


def _png(path, value=0):
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(path)
    with open(path, 'rb') as f:
        return {'image': ('x.png', f.read(), 'image/png')}


def _tree(folder):
    """Every path below ``folder``, relative, sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        found += [osp.relpath(osp.join(root, n), folder) for n in dirs + files]
    return sorted(found)


@pytest.fixture
def site(tmp_path):
    """A work dir with one run, and a folder outside it that links target."""
    root, outside = tmp_path / 'work', tmp_path / 'outside'
    run = make_run(str(root / 'cfg' / 'tsne_a'), str(tmp_path / 'data'))
    outside.mkdir()
    return dict(root=str(root), run=run, outside=str(outside),
                base=tmp_path)


# ---- a planted link in a run: every write refused -------------------------

def _post_selection(client, run_id, tmp_path):
    return client.post(f'/api/runs/{run_id}/selections',
                       json=dict(name='x', indices=[100, 101]))


def _post_splits(client, run_id, tmp_path):
    return client.post(f'/api/runs/{run_id}/splits',
                       json=dict(val_ratio=0.25, by='class'))


def _post_place(client, run_id, tmp_path):
    return client.post(f'/api/runs/{run_id}/place?save=mine',
                       files=_png(tmp_path / 'up.png'))


def _get_page(client, run_id, tmp_path):
    return client.get(f'/runs/{run_id}/')


@pytest.mark.parametrize('folder,request_', [
    ('selections', _post_selection),
    ('splits', _post_splits),
    ('placed', _post_place),
    ('placed/mine.images', _post_place),
    ('thumbs', _get_page),       # the page is made on the first visit
    ('explorer', _get_page),
])
def test_a_planted_link_gets_no_write(site, folder, request_):
    os.makedirs(osp.dirname(osp.join(site['run'], folder)), exist_ok=True)
    os.symlink(site['outside'], osp.join(site['run'], folder))
    client = _client(site['root'])
    r = request_(client, _run_id(client), site['base'])
    assert r.status_code == 403, r.text
    detail = r.json()['detail']
    assert f'{folder} in the run is a symlink' in detail, detail
    assert site['outside'] not in detail
    assert _tree(site['outside']) == []


def test_a_link_planted_deeper_or_as_a_file_is_refused_too(site):
    # placed/ is a real folder, placed/mine.images a link to a link
    os.makedirs(osp.join(site['run'], 'placed'))
    hop = osp.join(site['base'], 'hop')
    os.symlink(site['outside'], hop)
    os.symlink(hop, osp.join(site['run'], 'placed', 'mine.images'))
    # splits is a file: not a folder to write into
    with open(osp.join(site['run'], 'splits'), 'w') as f:
        f.write('not a folder')
    client = _client(site['root'])
    run_id = _run_id(client)
    assert _post_place(client, run_id, site['base']).status_code == 403
    assert _post_splits(client, run_id, site['base']).status_code == 403
    assert _tree(site['outside']) == []


def test_selections_through_a_link_are_neither_read_deleted_nor_tidied(site):
    outside = site['outside']
    record = dict(id=SELECTION, name='theirs', indices=[100])
    with open(osp.join(outside, f'{SELECTION}.json'), 'w') as f:
        json.dump(record, f)
    # what start-up tidying removes from a real selections folder
    leftovers = ['.tmp_abc', '20260101T000001000000_0123456789ab.csv']
    for name in [f'{SELECTION}.csv'] + leftovers:
        with open(osp.join(outside, name), 'w') as f:
            f.write('x')
    before = _tree(outside)
    os.symlink(outside, osp.join(site['run'], 'selections'))
    client = _client(site['root'])  # tidies at start-up: not through links
    run_id = _run_id(client)
    url = f'/api/runs/{run_id}/selections'
    assert client.delete(f'{url}/{SELECTION}').status_code == 403
    assert client.get(url).status_code == 403
    assert client.get(f'{url}/{SELECTION}').status_code == 403
    assert _tree(outside) == before


def test_writes_into_real_folders_still_work(site):
    client = _client(site['root'])
    run_id = _run_id(client)
    r = _post_selection(client, run_id, site['base'])
    assert r.status_code == 201, r.text
    r = _post_splits(client, run_id, site['base'])
    assert r.status_code == 200, r.text
    assert osp.isfile(osp.join(site['run'], 'splits', 'train.txt'))


# ---- place?save=: no overwrite, a bounded number of layers ---------------

@pytest.fixture(scope='module')
def demo(tmp_path_factory, digits_options):
    """A real demo run (the model places uploads) and a client on it."""
    work = tmp_path_factory.mktemp('untrusted_place') / 'work'
    run_dir = make_demo_run(work, digits_options, max_num_samples=10,
                            tsne=dict(perplexity=8.0, n_iter=300))
    client = _client(work, max_body_bytes=256 * 1024)
    return client, _run_id(client), run_dir


def _upload(path):
    with open(path, 'rb') as f:
        return {'image': (osp.basename(path), f.read(), 'image/png')}


def test_saving_over_an_existing_layer_is_409(demo, digits_root):
    client, run_id, run_dir = demo
    url = f'/api/runs/{run_id}/place?save=first'
    images = [osp.join(digits_root, 'train', c,
                       sorted(os.listdir(osp.join(digits_root, 'train',
                                                  c)))[0])
              for c in ('4', '7')]
    assert client.post(url, files=_upload(images[0])).status_code == 200
    layer = osp.join(run_dir, 'placed', 'first.csv')
    with open(layer, 'rb') as f:
        kept = f.read()
    with open(osp.join(run_dir, 'run.json'), 'rb') as f:
        manifest = f.read()
    r = client.post(url, files=_upload(images[1]))
    assert r.status_code == 409, r.text
    detail = r.json()['detail']
    assert "placed layer 'first'" in detail and 'another name' in detail
    with open(layer, 'rb') as f:
        assert f.read() == kept
    with open(osp.join(run_dir, 'run.json'), 'rb') as f:
        assert f.read() == manifest
    # another name is taken
    r = client.post(url.replace('first', 'second'),
                    files=_upload(images[1]))
    assert r.status_code == 200 and r.json()['saved'] == 'second'


def test_saved_layers_are_capped(site):
    placed = osp.join(site['run'], 'placed')
    os.makedirs(placed)
    for i in range(MAX_LAYERS):
        with open(osp.join(placed, f'layer{i}.csv'), 'w') as f:
            f.write('img_path\n')
    client = _client(site['root'])
    r = _post_place(client, _run_id(client), site['base'])
    assert r.status_code == 409, r.text
    detail = r.json()['detail']
    assert f'{MAX_LAYERS} placed layers' in detail and 'remove some' in detail
    assert not osp.exists(osp.join(placed, 'mine.images'))


# ---- jobs: the folders they write to ----------------------------------------

@pytest.fixture
def jobs(site, digits_root):
    """A client on a server with jobs on; its jobs cancelled at the end."""
    apps = []

    def start():
        app = create_app(site['root'], configs_dir=CONFIGS,
                         data_dirs=[digits_root])
        apps.append(app)
        return TestClient(app, base_url='http://127.0.0.1')

    yield start
    for app in apps:
        for job in app.state.jobs.list():
            if job['state'] in ('queued', 'running'):
                app.state.jobs.cancel(job['id'])


def _job(digits_root, **options):
    cfg = {'test_dataloader.dataset.data_root': digits_root,
           'test_dataloader.num_workers': 0,
           'test_dataloader.persistent_workers': False}
    cfg.update({f'test_dataloader.dataset.{k}': v
                for k, v in options.items()})
    return dict(config=DEMO, max_num_samples=3,
                tsne=dict(perplexity=2.0, n_iter=250), cfg_options=cfg)


def test_a_linked_job_folder_is_refused(site, jobs, digits_root):
    os.symlink(site['outside'], osp.join(site['root'],
                                         'resnet18-slim_digits'))
    client = jobs()
    r = client.post('/api/jobs', json=_job(digits_root))
    assert r.status_code == 403, r.text
    assert 'resnet18-slim_digits in the served folder is a symlink' in \
        r.json()['detail']
    assert client.get('/api/jobs').json()['jobs'] == []
    assert _tree(site['outside']) == []


def test_a_linked_state_folder_is_not_written(site, jobs, digits_root):
    os.symlink(site['outside'], osp.join(site['root'], '.tsneviz'))
    client = jobs()
    r = client.post('/api/jobs', json=_job(digits_root))
    assert r.status_code == 403 and 'jobs are disabled' in r.text
    assert _tree(site['outside']) == []


# ---- jobs: only local data, by the worker's rules ---------------------------

@pytest.mark.parametrize('field,value,why', [
    ('data_prefix', '~/ds', 'starts with ~'),
    ('ann_file', '~/meta/val.txt', 'starts with ~'),
    ('data_root', '~', 'starts with ~'),
    ('ann_file', 'http://127.0.0.1:9/val.txt', 'is a URL (http://)'),
    ('data_prefix', 's3://bucket/val', 'is a URL (s3://)'),
    ('ann_file', 'https://example.com/val.txt', 'is a URL (https://)'),
    ('data_root', 'cluster:s3://bucket', 'is a URL (s3://)'),
])
def test_job_data_is_a_local_path(jobs, digits_root, field, value, why):
    client = jobs()
    r = client.post('/api/jobs', json=_job(digits_root, **{field: value}))
    assert r.status_code == 403, r.text
    assert f"the dataset's {field} {why}" in r.json()['detail']
    assert client.get('/api/jobs').json()['jobs'] == []


@pytest.fixture
def swapped(tmp_path, digits_root):
    """A data folder whose ``ds`` link is re-pointed outside it."""
    data = tmp_path / 'data'
    (data / 'real' / 'val').mkdir(parents=True)
    link = data / 'ds'
    os.symlink(data / 'real', link)
    options = {'test_dataloader.dataset.data_root': str(link),
               'test_dataloader.num_workers': 0,
               'test_dataloader.persistent_workers': False}
    config = osp.join(CONFIGS, DEMO)

    def swap():
        os.unlink(link)
        os.symlink(digits_root, link)  # real images, outside the folder

    return dict(data=str(data), options=options, config=config, swap=swap)


def test_the_worker_check_sees_a_swapped_link(swapped, tmp_path):
    args = (swapped['config'], swapped['options'], [swapped['data']],
            str(tmp_path))
    check_data_again(*args)  # inside: passes
    swapped['swap']()
    with pytest.raises(Forbidden, match='data_root is outside the data '
                       'folders.*checked again as the job started'):
        check_data_again(*args)


def test_a_job_whose_data_link_moved_while_queued_fails(swapped, tmp_path):
    work = tmp_path / 'work' / 'resnet18-slim_digits'
    result = tmp_path / 'job.result.json'
    spec = tmp_path / 'job.spec.json'
    kwargs = dict(config=swapped['config'], checkpoint=None,
                  work_dir=str(work), max_num_samples=3,
                  cfg_options=swapped['options'],
                  tsne=dict(perplexity=2.0, n_iter=250),
                  trust_checkpoint=False, show=False, show_progress=False,
                  argv=['POST /api/jobs'])
    spec.write_text(json.dumps(dict(server_pid=os.getpid(),
                                    result=str(result), kwargs=kwargs,
                                    data_dirs=[swapped['data']])))
    swapped['swap']()  # after submission, before the worker starts
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run(
        [sys.executable, '-m', 'tsneviz.server.worker', str(spec)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=300)
    outcome = json.loads(result.read_text())
    assert done.returncode == 1, done.stdout + done.stderr
    assert outcome['state'] == 'failed', outcome
    assert 'data_root is outside the data folders' in outcome['error']
    assert 'checked again as the job started' in outcome['error']
    assert 'Traceback' not in done.stdout + done.stderr
    assert not osp.exists(work) or os.listdir(work) == []
