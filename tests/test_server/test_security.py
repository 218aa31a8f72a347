"""The server left running on a shared machine: what it refuses and bounds.

Issue 10, one section per gap: job data confined to --data-dir, cross-site
requests refused, a broken run does not break the listing, jobs bounded,
queued, cancellable and recorded across restarts, selections bounded and
cleaned after a kill -9, slow clients cut off, and the smaller items (NUL
bytes, jobs opt-in, no server paths in errors, weak tokens). Where the
transport matters (timeouts, kill -9, restarts) the test starts
``tools/serve.py`` as a process on a free port.
"""
import contextlib
import json
import os
import os.path as osp
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_server.test_app import N, Served, error, make_run
from tsneviz.rundir import write_json, write_table
from tsneviz.server.app import create_app

SERVE = osp.join(REPO, 'tools', 'serve.py')
CONFIGS = osp.join(REPO, 'configs')
DEMO = 'digits/resnet18-slim_digits.py'
RUN = 'cfg~tsne_a'


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(root, *flags, log=None):
    """``tools/serve.py root flags`` on a free port; yields (url, process)."""
    port = _free_port()
    log = log or osp.join(root, f'serve-{port}.log')
    with open(log, 'ab') as out:
        proc = subprocess.Popen(
            [sys.executable, SERVE, str(root), '--port', str(port), *flags],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    try:
        deadline = time.time() + 90
        while True:
            assert proc.poll() is None, open(log).read()
            try:
                if httpx.get(url + '/api/runs', timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, 'serve.py did not start'
            time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too: it only waits to be reaped
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return True


def _wait_for(what, predicate, timeout=120, every=0.2):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.time() < deadline, f'timed out waiting for {what}'
        time.sleep(every)


@pytest.fixture
def work(tmp_path):
    """A work dir with one good run whose images are in ``data``."""
    root, data = tmp_path / 'work', tmp_path / 'data'
    make_run(str(root / 'cfg' / 'tsne_a'), str(data))
    return dict(root=str(root), data=str(data), base=str(tmp_path))


@pytest.fixture
def jobs_app(tmp_path, digits_root):
    """An in-process server with jobs on, data confined to the digits."""
    root = tmp_path / 'work'
    root.mkdir()
    apps = []

    def start(**kwargs):
        served = Served(create_app(str(root), configs_dir=CONFIGS,
                                   data_dirs=[digits_root], **kwargs))
        apps.append(served)
        return httpx.Client(base_url=served.url, timeout=120)

    yield start
    for served in apps:
        for job in served.server.config.app.state.jobs.list():
            if job['state'] in ('queued', 'running'):
                served.server.config.app.state.jobs.cancel(job['id'])
        served.stop()


def _job(digits_root, **options):
    cfg = {'test_dataloader.dataset.data_root': digits_root,
           'test_dataloader.num_workers': 0,
           'test_dataloader.persistent_workers': False}
    cfg.update(options)
    return dict(config=DEMO, max_num_samples=100_000,
                tsne=dict(n_iter=10_000, perplexity=30.0), cfg_options=cfg)


# ---- 1. job data confined to --data-dir -----------------------------------

@pytest.mark.parametrize('key,value', [
    ('data_root', '/'),
    ('data_root', '/etc'),
    ('data_prefix', '../../../../../../etc'),
    ('ann_file', '/etc/passwd'),
    ('data_prefix', '/'),
])
def test_job_dataset_outside_the_data_dirs_is_refused(jobs_app, digits_root,
                                                      key, value):
    client = jobs_app()
    body = _job(digits_root, **{f'test_dataloader.dataset.{key}': value})
    r = client.post('/api/jobs', json=body)
    assert f'{key} is outside the data folders' in error(r, 403)
    assert client.get('/api/jobs').json()['jobs'] == []


def test_job_symlink_out_of_a_data_dir_is_refused(jobs_app, digits_root,
                                                  tmp_path):
    link = osp.join(digits_root, f'link-{tmp_path.name}')
    os.symlink('/etc', link)
    try:
        r = jobs_app().post('/api/jobs', json=_job(
            digits_root, **{'test_dataloader.dataset.data_root': link}))
        assert 'outside the data folders' in error(r, 403)
    finally:
        os.unlink(link)


def test_outside_file_existing_or_not_gets_the_same_answer(jobs_app,
                                                           digits_root):
    client = jobs_app()
    answers = []
    for ann in ('/etc/passwd', '/etc/no-such-file-tsneviz'):
        r = client.post('/api/jobs', json=_job(
            digits_root, **{'test_dataloader.dataset.ann_file': ann}))
        answers.append((r.status_code, r.json()))
    assert answers[0] == answers[1] and answers[0][0] == 403, answers


def test_config_own_dataset_paths_are_checked_too(jobs_app):
    # the demo config reads data/digits relative to the working directory:
    # not inside the test's data folder
    r = jobs_app().post('/api/jobs', json=dict(config=DEMO))
    assert 'data_root is outside the data folders' in error(r, 403)


def test_job_inside_the_data_dir_is_accepted(jobs_app, digits_root):
    client = jobs_app()
    r = client.post('/api/jobs', json=_job(digits_root))
    assert r.status_code == 202, r.text
    assert client.delete(f'/api/jobs/{r.json()["id"]}').json()['state'] == \
        'cancelled'


# ---- 2. cross-site requests ---------------------------------------------

@pytest.mark.parametrize('headers', [
    {'origin': 'http://evil.example'},
    {'origin': 'null'},
    {'origin': 'http://127.0.0.1:1'},  # another port is another origin
    {'sec-fetch-site': 'cross-site'},
    {'sec-fetch-site': 'same-site'},
    {'origin': 'http://evil.example', 'content-type': 'text/plain'},
])
def test_cross_site_state_changes_are_refused(work, headers):
    served = Served(create_app(work['root']))
    try:
        with httpx.Client(base_url=served.url) as client:
            body = json.dumps(dict(name='x', indices=[100]))
            url = f'/api/runs/{RUN}/selections'
            r = client.post(url, content=body, headers={
                'content-type': 'application/json', **headers})
            assert 'another site' in error(r, 403)
            r = client.post(f'/api/runs/{RUN}/splits',
                            json=dict(val_ratio=0.25, by='class'),
                            headers=headers)
            error(r, 403)
            assert client.get(url).json()['total'] == 0
            # the server's own pages (same origin) and non-browsers may
            same = client.post(url, content=body, headers={
                'content-type': 'application/json', 'origin': served.url,
                'sec-fetch-site': 'same-origin'})
            assert same.status_code == 201, same.text
            assert client.post(url, content=body, headers={
                'content-type': 'application/json'}).status_code == 201
            # reading stays open: a page cannot read the answer anyway
            assert client.get('/api/runs', headers=headers).status_code == 200
    finally:
        served.stop()


def test_requirements_pin_what_the_server_relies_on():
    from importlib.metadata import version

    from packaging.requirements import Requirement

    with open(osp.join(REPO, 'requirements', 'optional.txt')) as f:
        reqs = {r.name.lower(): r for r in
                (Requirement(line.split('#')[0].strip()) for line in f
                 if line.split('#')[0].strip())}
    for name in ('fastapi', 'starlette', 'uvicorn', 'pydantic', 'h11'):
        assert name in reqs and any(s.operator == '>=' for s in
                                    reqs[name].specifier), name
        assert reqs[name].specifier.contains(version(name)), name


# ---- 3. one broken run does not break the listing ------------------------

def test_broken_runs_are_listed_as_broken(work):
    root = work['root']
    empty = make_run(osp.join(root, 'cfg', 'tsne_empty'), work['data'])
    open(osp.join(empty, 'samples.csv'), 'w').close()
    listed = make_run(osp.join(root, 'cfg', 'tsne_list'), work['data'])
    write_json(osp.join(listed, 'run.json'), [1, 2, 3])
    served = Served(create_app(root))
    try:
        with httpx.Client(base_url=served.url) as client:
            r = client.get('/api/runs')
            assert r.status_code == 200, r.text
            body = r.json()
            assert [x['id'] for x in body['runs']] == [RUN]
            broken = {x['id']: x for x in body['broken']}
            assert set(broken) == {'cfg~tsne_empty', 'cfg~tsne_list'}
            for item in broken.values():
                assert item['status'] == 'broken' and item['error']
                assert work['base'] not in item['error']
            detail = error(client.get('/api/runs/cfg~tsne_list/points'), 409)
            assert 'broken' in detail and 'internal error' not in detail
            assert client.get(f'/api/runs/{RUN}/points').status_code == 200
    finally:
        served.stop()


# ---- 4. jobs: bounded, queued, one at a time, cancellable, recorded ------

@pytest.mark.parametrize('change', [
    {'cfg_options': {'test_dataloader.num_workers': 40}},
    {'cfg_options': {'test_dataloader.num_workers': '4'}},
    {'cfg_options': {'test_dataloader.batch_size': 100_000}},
    {'cfg_options': {'test_dataloader.persistent_workers': 'yes'}},
    {'num_workers': 40},
    {'batch_size': 100_000},
    {'tsne': {'n_jobs': 1000}},
    {'tsne': {'n_jobs': -1}},
    {'tsne': {'pca_dims': 100_000}},
    {'tsne': {'n_iter': 100_000}},
])
def test_job_values_are_bounded(jobs_app, digits_root, change):
    client = jobs_app()
    body = _job(digits_root)
    for key, value in change.items():
        if isinstance(value, dict) and key in body:
            body[key].update(value)
        else:
            body[key] = value
    error(client.post('/api/jobs', json=body), 422)
    assert client.get('/api/jobs').json()['jobs'] == []


def _record(tmp_path, job_id):
    with open(tmp_path / 'work' / '.tsneviz' / 'jobs' / f'{job_id}.json') \
            as f:
        return json.load(f)


def test_queue_cap_one_at_a_time_and_cancel(jobs_app, digits_root,
                                            tmp_path):
    client = jobs_app(max_queue=2, max_jobs=1)
    body = _job(digits_root)
    first = client.post('/api/jobs', json=body).json()
    _wait_for('the first job to run', lambda: client.get(
        f'/api/jobs/{first["id"]}').json()['state'] == 'running')
    queued = [client.post('/api/jobs', json=body) for _ in range(2)]
    assert [r.status_code for r in queued] == [202, 202]
    full = client.post('/api/jobs', json=body)
    assert 'waiting' in error(full, 429)
    assert full.headers['retry-after']
    states = {j['id']: j['state'] for j in client.get('/api/jobs').json()[
        'jobs']}
    assert sorted(states.values()) == ['queued', 'queued', 'running']
    # a queued job is dropped from the queue
    second, third = (r.json()['id'] for r in queued)
    assert client.delete(f'/api/jobs/{second}').json()['state'] == \
        'cancelled'
    # a running job's process (group) is stopped
    pid = _record(tmp_path, first['id'])['_pid']
    assert _alive(pid)
    cancelled = client.delete(f'/api/jobs/{first["id"]}')
    assert cancelled.status_code == 200 and \
        cancelled.json()['state'] == 'cancelled', cancelled.text
    _wait_for('the job process to end', lambda: not _alive(pid), 15)
    assert _record(tmp_path, first['id'])['state'] == 'cancelled'
    # the next one starts only now
    _wait_for('the third job to run', lambda: client.get(
        f'/api/jobs/{third}').json()['state'] == 'running')
    client.delete(f'/api/jobs/{third}')
    assert 'already cancelled' in error(
        client.delete(f'/api/jobs/{third}'), 409)
    error(client.delete('/api/jobs/0123456789abcdef'), 404)


@pytest.mark.slow
def test_jobs_survive_a_restart_as_interrupted(tmp_path, digits_root):
    root = tmp_path / 'work'
    root.mkdir()
    flags = ('--jobs', '--configs-dir', CONFIGS, '--data-dir', digits_root)
    with serving(root, *flags, log=str(tmp_path / 'a.log')) as (url, proc):
        job = httpx.post(url + '/api/jobs', json=_job(digits_root)).json()
        _wait_for('the job to run', lambda: httpx.get(
            f'{url}/api/jobs/{job["id"]}').json()['state'] == 'running')
        pid = _record(tmp_path, job['id'])['_pid']
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the job does not outlive its server
        _wait_for('the orphaned job to stop', lambda: not _alive(pid), 30)
    with serving(root, *flags, log=str(tmp_path / 'b.log')) as (url, _):
        after = httpx.get(f'{url}/api/jobs/{job["id"]}')
        assert after.status_code == 200, after.text
        assert after.json()['state'] == 'interrupted'
        assert 'running' in after.json()['error']
        assert [j['id'] for j in httpx.get(url + '/api/jobs').json()[
            'jobs']] == [job['id']]


# ---- 5. selections: bounded, paged, cleaned after a kill -9 --------------

def test_selections_are_capped_and_deletable(work):
    served = Served(create_app(work['root'], max_selections=3))
    try:
        with httpx.Client(base_url=served.url) as client:
            url = f'/api/runs/{RUN}/selections'
            ids = [client.post(url, json=dict(name=f's{i}', indices=[100]))
                   .json()['id'] for i in range(3)]
            assert 'limit' in error(client.post(url, json=dict(
                name='s3', indices=[100])), 409)
            assert client.delete(f'{url}/{ids[0]}').status_code == 204
            error(client.get(f'{url}/{ids[0]}'), 404)
            error(client.delete(f'{url}/{ids[0]}'), 404)
            assert client.post(url, json=dict(
                name='s3', indices=[100])).status_code == 201
    finally:
        served.stop()


def test_selection_bytes_are_capped(work):
    served = Served(create_app(work['root'], max_selection_bytes=2000))
    try:
        with httpx.Client(base_url=served.url) as client:
            url = f'/api/runs/{RUN}/selections'
            every = list(range(100, 100 + N))
            assert client.post(url, json=dict(
                name='a', indices=every, note='x' * 1500)).status_code == 201
            assert 'bytes' in error(client.post(url, json=dict(
                name='b', indices=[100])), 409)
    finally:
        served.stop()


def test_selection_listing_is_paged_without_indices(work):
    served = Served(create_app(work['root']))
    try:
        with httpx.Client(base_url=served.url) as client:
            url = f'/api/runs/{RUN}/selections'
            saved = [client.post(url, json=dict(
                name=f's{i}', indices=list(range(100, 100 + N)))).json()
                for i in range(5)]
            page = client.get(url, params=dict(limit=2)).json()
            assert page['total'] == 5 and page['limit'] == 2
            assert [s['id'] for s in page['selections']] == \
                [s['id'] for s in saved[:2]]
            assert all('indices' not in s and s['n_indices'] == N
                       for s in page['selections'])
            last = client.get(url, params=dict(offset=4)).json()
            assert [s['name'] for s in last['selections']] == ['s4']
            error(client.get(url, params=dict(limit=100_000)), 422)
            assert client.get(f'{url}/{saved[3]["id"]}').json()['indices'] \
                == list(range(100, 100 + N))
    finally:
        served.stop()


def _big_run(folder, n):
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10
    np.save(osp.join(folder, 'feat_3.npy'),
            rng.normal(size=(n, 2)).astype(np.float32))
    coords = rng.normal(size=(n, 2)).astype(np.float32)
    np.save(osp.join(folder, 'tsne_feat_3.npy'), coords)
    write_table(osp.join(folder, 'samples.csv'), dict(
        index=np.arange(n), img_path=[f'val/{i}.png' for i in range(n)],
        gt_label=labels, gt_class=labels, feat_3_x=coords[:, 0],
        feat_3_y=coords[:, 1]))
    write_json(osp.join(folder, 'run.json'), dict(
        n_samples=n, classes=[str(c) for c in range(10)],
        extraction=dict(keys=['feat_3'])))


def _leftovers(folder):
    """Temporary files and CSVs without their JSON in a selections folder."""
    names = set(os.listdir(folder)) if osp.isdir(folder) else set()
    return sorted(n for n in names if n.startswith('.tmp_') or (
        n.endswith('.csv') and n[:-4] + '.json' not in names))


@pytest.mark.slow
def test_kill_9_mid_write_leaves_nothing_listed_and_is_cleaned(tmp_path):
    root, n = tmp_path / 'work', 100_000
    _big_run(str(root / 'cfg' / 'tsne_big'), n)
    folder = str(root / 'cfg' / 'tsne_big' / 'selections')
    url_path = '/api/runs/cfg~tsne_big/selections'
    body = json.dumps(dict(name='all', indices=list(range(n))))
    found = []
    for attempt in range(8):
        with serving(root) as (url, proc):
            stop = threading.Event()

            def post():
                with httpx.Client(base_url=url, timeout=30) as client:
                    while not stop.is_set():
                        try:
                            client.post(url_path, content=body, headers={
                                'content-type': 'application/json'})
                        except httpx.HTTPError:
                            return
            threads = [threading.Thread(target=post) for _ in range(3)]
            for t in threads:
                t.start()
            time.sleep(1.5 + 0.37 * attempt)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            stop.set()
            for t in threads:
                t.join(30)
        found = _leftovers(folder)
        if found:
            break
    assert found, 'no kill landed mid-write in 8 tries'
    with serving(root) as (url, _):
        listed = httpx.get(url + url_path, params=dict(limit=500)).json()
        assert _leftovers(folder) == []
        jsons = sorted(f[:-5] for f in os.listdir(folder)
                       if f.endswith('.json'))
        assert sorted(s['id'] for s in listed['selections']) == jsons
        assert listed['total'] == len(jsons)
        assert all(s['n_indices'] == n for s in listed['selections'])


# ---- 6. slow clients ------------------------------------------------------

def test_trickled_bodies_get_408_and_are_closed(work):
    with serving(work['root'], '--body-timeout', '2',
                 '--keep-alive-timeout', '1') as (url, _):
        port = int(url.rsplit(':', 1)[1])
        socks = []
        for _ in range(40):
            s = socket.create_connection(('127.0.0.1', port))
            s.sendall(b'POST /api/runs/%s/selections HTTP/1.1\r\n'
                      b'Host: 127.0.0.1\r\nContent-Type: application/json'
                      b'\r\nContent-Length: 1000\r\n\r\n{"name": "x", '
                      % RUN.encode())
            socks.append(s)
        answers = []
        for s in socks:
            # far beyond the 2 s body timeout: a socket still open then is
            # one the server never timed out
            s.settimeout(15)
            data = b''
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break  # the server closed the connection
                    data += chunk
            except socket.timeout:
                data += b'<still open>'
            s.close()
            answers.append(data)
        assert all(a.startswith(b'HTTP/1.1 408') and
                   not a.endswith(b'<still open>') for a in answers), \
            answers[0]
        # an idle kept-alive connection is closed too (by the server, long
        # before our 10 s read timeout: keep-alive is 1 s)
        s = socket.create_connection(('127.0.0.1', port))
        s.sendall(b'GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
        s.settimeout(10)
        data, closed = b'', False
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True  # the server closed the connection
                    break
                data += chunk
        except socket.timeout:
            pass
        s.close()
        assert data.startswith(b'HTTP/1.1 200'), data[:200]
        assert closed, 'the server kept an idle connection open'
        # and the server still answers
        assert httpx.get(url + '/api/runs').status_code == 200


# ---- 7. NUL bytes, jobs opt-in, no server paths, weak tokens -------------

def test_nul_byte_in_a_path_is_400(work):
    served = Served(create_app(work['root']))
    try:
        with httpx.Client(base_url=served.url) as client:
            for url in (f'/runs/{RUN}/thumbs%00.png', f'/runs/{RUN}/a%00b',
                        f'/api/runs/{RUN}%00/points'):
                assert 'NUL' in error(client.get(url), 400), url
    finally:
        served.stop()


def test_jobs_are_off_unless_asked_for(work):
    # served from the repository, which has configs/: still no jobs
    with serving(work['root']) as (url, _):
        r = httpx.post(url + '/api/jobs', json=dict(config=DEMO))
        assert '--jobs' in error(r, 403)
    r = subprocess.run([sys.executable, SERVE, work['root'], '--jobs'],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and '--data-dir' in r.stderr


def test_errors_name_no_server_path(work, digits_root, tmp_path):
    os.remove(osp.join(work['data'], 'val', '0', '2.png'))
    # images are served from inside the data folders only
    served = Served(create_app(work['root'], configs_dir=CONFIGS,
                               data_dirs=[digits_root, work['data']]))
    try:
        with httpx.Client(base_url=served.url) as client:
            details = [
                error(client.get(f'/api/runs/{RUN}/images/2'), 404),
                error(client.post('/api/jobs', json=dict(
                    config='digits/none.py')), 400),
                error(client.post('/api/jobs', json=_job(
                    digits_root, **{'test_dataloader.dataset.data_root':
                                    str(tmp_path)})), 403)]
    finally:
        served.stop()
    for detail in details:
        assert not re.search(r'(^|[\s\'"(])/(tmp|work|root|home|etc)\b',
                             detail), detail
        assert work['base'] not in detail and REPO not in detail, detail


@pytest.mark.parametrize('token,weak', [('short', True),
                                        ('a' * 40, True),
                                        ('9f86d081884c7d659a2feaa0c55ad015',
                                         False)])
def test_weak_token_on_a_public_host_is_warned_about(tmp_path, token, weak):
    # the root does not exist: the server stops right after its checks
    r = subprocess.run([sys.executable, SERVE, str(tmp_path / 'none'),
                        '--host', '0.0.0.0', '--token', token],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'not a directory' in r.stderr
    assert ('warning: --token is easy to guess' in r.stderr) == weak, \
        r.stderr
