"""What a run directory or a request holds is data, never trusted.

A served run directory may have been written by someone else (a shared
``work_dirs``, a run copied from elsewhere): its folder names, the values
in ``samples.csv`` and ``neighbors_*.npz``, and any ``.html`` or ``.svg``
in it. Each test runs the real server (uvicorn on loopback, or Chromium
against it) on run directories written at test time:

- run ids stay unambiguous whatever the folders are called;
- malformed values are a 4xx naming the bad field, or the run is listed as
  broken, never an internal error;
- no successful response names an absolute server path;
- every response says ``nosniff`` and carries a Content-Security-Policy,
  so that no file of a run can script the API;
- without a token, the ``Host`` must name this server, read strictly.
"""
import csv
import json
import logging
import os
import os.path as osp
import time

import httpx
import numpy as np
import pytest

from tests.conftest import REPO, make_features_run
from tests.test_explorer.test_page import browser  # noqa: F401 fixture
from tests.test_server.test_app import N, Served, error, make_run
from tsneviz.rundir import write_json
from tsneviz.server.app import create_app
from tsneviz.server.security import EXPLORER_POLICY, SANDBOX_POLICY

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
            assert [(r['id'], r['path'], r['created']) for r in runs] == \
                [('c1~run', 'c1/run', 'real')]
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


# ---- 12. no absolute server path in a successful response ----------------

def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _no_server_path(body, *folders):
    # a string that starts with '/' is a URL of this server or a leak
    leaked = [s for s in _strings(body) if any(f in s for f in folders) or
              (s.startswith('/') and not s.startswith(('/runs/', '/api/')))]
    assert not leaked, leaked


def test_responses_name_no_server_path(tree, client):
    folders = (tree['base'], REPO, osp.realpath(tree['base']))
    listed = client.get('/api/runs').json()
    _no_server_path(listed, *folders)
    (summary, ) = listed['runs']
    assert summary['path'] == 'cfg/tsne_a'
    # the name POST /api/jobs takes: relative to the configs directory
    assert summary['config'] == 'digits/resnet18-slim_digits.py'
    points = client.get(f'/api/runs/{RUN}/points').json()
    _no_server_path(points, *folders)
    # relative to the folder images are served from (the dataset's
    # data_prefix): the class folder stays visible
    assert points['points'][5]['img_path'] == '1/5.png'
    neighbors = client.get(f'/api/runs/{RUN}/neighbors/5',
                           params=dict(k=3)).json()
    _no_server_path(neighbors, *folders)
    assert all(n['img_path'].count('/') == 1
               for n in neighbors['neighbors'])
    splits = client.post(f'/api/runs/{RUN}/splits',
                         json=dict(val_ratio=0.25, by='class'))
    assert splits.status_code == 200, splits.text
    _no_server_path(splits.json(), *folders)
    for name in ('train', 'val', 'duplicates'):
        assert osp.isfile(osp.join(tree['run'], splits.json()[name]))
    assert splits.json()['train'] == 'splits/train.txt'
    # run.json as served: the paths it records (and make_splits added)
    manifest = client.get(f'/runs/{RUN}/run.json')
    assert manifest.status_code == 200, manifest.text
    _no_server_path(manifest.json(), *folders)
    assert manifest.json()['data_prefix'] == '<data-root>'
    assert manifest.json()['work_dir'] == '<root>/cfg'
    assert manifest.json()['n_samples'] == N


def test_job_records_name_no_server_path(tree, tmp_path):
    root = str(tmp_path / 'work')
    run_dir = make_run(osp.join(root, 'cfg', 'tsne_job'), tree['data'])
    jobs = osp.join(root, '.tsneviz', 'jobs')
    os.makedirs(jobs)
    job_id = '0123456789abcdef'
    write_json(osp.join(jobs, f'{job_id}.json'), dict(
        id=job_id, state='done', config='digits/resnet18-slim_digits.py',
        checkpoint=None, created='2026-12-01T10:00:00+0000',
        started='2026-12-01T10:00:01+0000',
        finished='2026-12-01T10:01:00+0000', run='cfg~tsne_job',
        run_dir=run_dir, error=None))
    served = _serve(root, configs_dir=osp.join(REPO, 'configs'))
    try:
        with httpx.Client(base_url=served.url) as c:
            listed = c.get('/api/jobs').json()
            one = c.get(f'/api/jobs/{job_id}').json()
    finally:
        served.stop()
    _no_server_path(listed, str(tmp_path), REPO)
    assert one['run_dir'] == 'cfg/tsne_job' and one['run'] == 'cfg~tsne_job'


# ---- 12. headers: nosniff everywhere, nothing of a run scripts the API --

def _hostile_files(run_dir):
    """Files of a run that try to change the server's state."""
    post = ("fetch('/api/runs/cfg~tsne_a/selections', {method: 'POST', "
            "headers: {'content-type': 'application/json'}, body: "
            "JSON.stringify({name: 'pwned', indices: [100]})})")
    with open(osp.join(run_dir, 'evil.html'), 'w') as f:
        f.write(f'<html><body><script>window.ran = true; {post}'
                '</script></body></html>')
    with open(osp.join(run_dir, 'evil.svg'), 'w') as f:
        f.write('<svg xmlns="http://www.w3.org/2000/svg"><script>'
                f'window.ran = true; {post}</script></svg>')
    with open(osp.join(run_dir, 'evil.txt'), 'w') as f:
        f.write(f'<html><script>window.ran = true; {post}</script></html>')
    with open(osp.join(run_dir, 'evil.js'), 'w') as f:
        f.write(f'{post};\n')
    # the explorer page itself, written by someone else: every way its
    # scripts could send a request of their own
    with open(osp.join(run_dir, 'index.html'), 'w') as f:
        f.write(f'''<html><body>
<form id="f" method="post" action="/api/runs/cfg~tsne_a/splits"
      enctype="text/plain"><input name='{{"val_ratio": 0.5, "x": "'
      value='"}}'></form>
<script>
window.ran = true;
window.tries = {{}};
const note = (name) => (e) => {{ window.tries[name] = String(e); }};
try {{ {post}.catch(note('fetch')); }} catch (e) {{ note('fetch')(e); }}
try {{
  const x = new XMLHttpRequest();
  x.open('POST', '/api/runs/cfg~tsne_a/selections');
  x.setRequestHeader('content-type', 'application/json');
  x.onerror = note('xhr');
  x.send(JSON.stringify({{name: 'pwned', indices: [100]}}));
}} catch (e) {{ note('xhr')(e); }}
try {{ new Worker('evil.js').onerror = note('worker'); }}
catch (e) {{ note('worker')(e); }}
try {{ navigator.sendBeacon('/api/runs/cfg~tsne_a/selections', 'x'); }}
catch (e) {{ note('beacon')(e); }}
// pages of the server that may call the API: opened, then used
for (const url of ['/docs', '/api/runs', '/runs/cfg~tsne_a/evil.txt']) {{
  const w = window.open(url);
  setTimeout(() => {{
    try {{ w.eval({json.dumps(post)}); }} catch (e) {{ note(url)(e); }}
  }}, 1500);
}}
setTimeout(() => {{
  try {{ document.getElementById('f').submit(); }}
  catch (e) {{ note('form')(e); }}
}}, 2500);
</script></body></html>''')


def _count_selections(url):
    return httpx.get(url + f'/api/runs/{RUN}/selections').json()['total']


def test_every_response_says_nosniff_and_sandboxes_run_files(tmp_path):
    root, data = str(tmp_path / 'work'), str(tmp_path / 'data')
    run_dir = make_run(osp.join(root, 'cfg', 'tsne_a'), data)
    _hostile_files(run_dir)
    served = _serve(root)
    try:
        with httpx.Client(base_url=served.url) as c:
            answers = {url: c.get(url) for url in (
                '/', '/api/runs', f'/api/runs/{RUN}/points',
                f'/api/runs/{RUN}/images/0', '/api/runs/nope/points',
                f'/runs/{RUN}/evil.html', f'/runs/{RUN}/evil.svg',
                f'/runs/{RUN}/evil.txt', f'/runs/{RUN}/run.json',
                f'/runs/{RUN}/', '/docs', '/openapi.json')}
            answers['421'] = c.get('/api/runs',
                                   headers={'host': 'evil.example'})
            answers['422'] = c.post(f'/api/runs/{RUN}/selections', json={})
    finally:
        served.stop()
    for url, r in answers.items():
        assert r.headers.get('x-content-type-options') == 'nosniff', url
        assert r.headers.get('content-security-policy'), url
    for url in (f'/runs/{RUN}/evil.html', f'/runs/{RUN}/evil.svg',
                f'/runs/{RUN}/evil.txt', '/api/runs', '/'):
        policy = answers[url].headers['content-security-policy']
        assert policy == SANDBOX_POLICY and policy.startswith('sandbox;')
        assert "default-src 'none'" in policy
    page = answers[f'/runs/{RUN}/'].headers['content-security-policy']
    assert page == EXPLORER_POLICY and "connect-src 'none'" in page
    docs = answers['/docs']
    assert docs.headers['cross-origin-opener-policy'] == 'same-origin'
    assert answers['421'].status_code == 421


def test_run_files_cannot_script_the_api(browser, tmp_path):  # noqa: F811
    root, data = str(tmp_path / 'work'), str(tmp_path / 'data')
    run_dir = make_run(osp.join(root, 'cfg', 'tsne_a'), data)
    _hostile_files(run_dir)
    served = _serve(root)
    context = browser.new_context()
    try:
        page = context.new_page()
        for name in ('evil.html', 'evil.svg'):
            page.goto(f'{served.url}/runs/{RUN}/{name}')
            page.wait_for_timeout(500)
            # sandboxed: its script never ran
            assert page.evaluate('window.ran === undefined'), name
        # a text file is never sniffed into a page
        page.goto(f'{served.url}/runs/{RUN}/evil.txt')
        assert page.evaluate('window.ran === undefined')
        # the explorer page's scripts run, but cannot send a request
        page.goto(f'{served.url}/runs/{RUN}/')
        page.wait_for_timeout(4000)
        assert page.evaluate('window.ran') is True
        tries = page.evaluate('window.tries')
        # the docs' window too: cut off from its opener (COOP)
        assert {'fetch', 'xhr', 'worker', '/docs', '/api/runs',
                f'/runs/{RUN}/evil.txt'} <= set(tries), tries
        time.sleep(1)
        assert _count_selections(served.url) == 0
        assert not osp.exists(osp.join(run_dir, 'splits'))
    finally:
        context.close()
        served.stop()


def test_explorer_page_works_under_its_policy(browser, tmp_path,  # noqa
                                              digits_root):
    from tsneviz.explorer import write_explorer
    run_dir = make_features_run(tmp_path / 'work', digits_root, per_class=5)
    write_explorer(run_dir)
    served = _serve(osp.dirname(run_dir))
    context = browser.new_context()
    try:
        page = context.new_page()
        blocked = []
        page.on('console', lambda m: blocked.append(m.text)
                if 'Content Security Policy' in m.text else None)
        run_id = osp.basename(run_dir)
        page.goto(f'{served.url}/runs/{run_id}/')
        page.wait_for_function('window.tsneviz && window.tsneviz.ready',
                               timeout=60_000)
        assert page.evaluate('tsneviz.source.data.x.length') == 50
        # hovering a point shows its thumbnail, from the thumbnails API
        point = page.evaluate('tsneviz.toScreen(0)')
        page.mouse.move(point['x'], point['y'])
        page.wait_for_selector('#tsneviz-hover:not([hidden])')
        page.wait_for_selector('#tsneviz-hover .thumb[data-painted]')
    finally:
        context.close()
        served.stop()
    assert not blocked, blocked


# ---- 12. Host header -----------------------------------------------------

def test_host_header_names_this_server_or_is_refused(tree):
    served = _serve(tree['root'])
    port = int(served.url.rsplit(':', 1)[1])
    other = port + 1 if port < 65535 else port - 1
    try:
        with httpx.Client(base_url=served.url) as c:
            def status(host):
                return c.get('/api/runs', headers={'host': host}).status_code

            for host in (f'127.0.0.1:{port}', f'localhost:{port}',
                         f'[::1]:{port}', 'localhost', '127.0.0.1',
                         f'LOCALHOST:{port}'):
                assert status(host) == 200, host
            for host in ('[::1]evil.com', f'[::1]evil.com:{port}',
                         f'127.0.0.1:{other}', f'localhost:{other}',
                         f'[::1]:{other}', f'localhost:{port}x',
                         f'user@localhost:{port}', f'localhost:{port}/x',
                         '[::1', f'localhost:{port}:{port}',
                         f'evil.example:{port}', ''):
                assert status(host) == 421, host
    finally:
        served.stop()
