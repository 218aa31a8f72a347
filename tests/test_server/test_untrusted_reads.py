"""A served run directory written by someone else: what the server reads.

Everything in a run directory is data, whoever wrote it: ``run.json``,
``samples.csv``, ``thumbs/index.json``, the arrays and the links between
them. Each test plants one hostile file in a real run and asks the real
server (uvicorn on loopback) for it: nothing outside the run and its
dataset comes back, nothing hangs, memory stays bounded, and the other
runs keep working.
"""
import io
import json
import os
import os.path as osp
import threading
import time
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.test_server.test_app import N, Served, _png, error, make_run
from tests.test_server.test_security import serving
from tsneviz.rundir import MAX_TABLE_BYTES, Run, write_json
from tsneviz.rundir.thumbs import pack_thumbnails
from tsneviz.server.app import create_app

GOOD, BAD = 'cfg~tsne_good', 'cfg~tsne_bad'
SECRET = b'secret-outside-the-run'


@pytest.fixture
def runs(tmp_path):
    """Two runs of the same dataset, and a secret PNG and text outside."""
    root, data = tmp_path / 'work', tmp_path / 'data'
    good = make_run(str(root / 'cfg' / 'tsne_good'), str(data))
    bad = make_run(str(root / 'cfg' / 'tsne_bad'), str(data))
    outside = tmp_path / 'outside'
    _png(str(outside / 'secret.png'), 255)
    (outside / 'secret.txt').write_bytes(SECRET)
    return dict(root=str(root), data=str(data), good=good, bad=bad,
                outside=str(outside), base=str(tmp_path))


def _served(root, **kwargs):
    served = Served(create_app(root, **kwargs))
    return served, httpx.Client(base_url=served.url, timeout=30)


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert('L'))


# ---- thumbs/index.json names its sheets: plain names in thumbs/ only -----

@pytest.mark.parametrize('sheet', ['absolute',
                                   '../../../../outside/secret.png'])
def test_index_naming_a_sheet_outside_thumbs_is_refused(runs, sheet):
    pack_thumbnails(runs['bad'], Run(runs['bad']).image_paths, size=8)
    index = osp.join(runs['bad'], 'thumbs', 'index.json')
    with open(index) as f:
        header = json.load(f)
    header['sheets'][0]['file'] = osp.join(runs['outside'], 'secret.png') \
        if sheet == 'absolute' else sheet
    write_json(index, header)
    served, client = _served(runs['root'])
    try:
        for position in (0, N - 1):
            r = client.get(f'/api/runs/{BAD}/images/{position}')
            detail = error(r, 400)
            assert 'thumbs/index.json is damaged' in detail
            assert 'sheet 0 must be the file sheet_0.png' in detail
            assert not r.content.startswith(b'\x89PNG')
        # the run's own sheets are fine elsewhere
        assert client.get(f'/api/runs/{GOOD}/images/0').status_code == 200
    finally:
        client.close()
        served.stop()


def test_index_with_cells_outside_its_sheets_is_refused(runs):
    pack_thumbnails(runs['bad'], Run(runs['bad']).image_paths, size=8)
    index = osp.join(runs['bad'], 'thumbs', 'index.json')
    with open(index) as f:
        header = json.load(f)
    header['per_sheet'] = header['cols'] = 1  # 12 thumbnails, one sheet
    write_json(index, header)
    served, client = _served(runs['root'])
    try:
        detail = error(client.get(f'/api/runs/{BAD}/images/5'), 400)
        assert 'do not fit in 1 sheets' in detail
    finally:
        client.close()
        served.stop()


# ---- run.json's dataset root cannot widen what is served -----------------

def _widen(run_dir, img_path, data_root='/', data_prefix=None):
    """run.json with another dataset root, samples.csv row 0 elsewhere."""
    with open(osp.join(run_dir, 'run.json')) as f:
        manifest = json.load(f)
    manifest['data_root'] = data_root
    manifest.pop('data_prefix')
    if data_prefix is not None:
        manifest['data_prefix'] = data_prefix
    write_json(osp.join(run_dir, 'run.json'), manifest)
    table = osp.join(run_dir, 'samples.csv')
    with open(table) as f:
        lines = f.read().split('\n')
    cells = lines[1].split(',')
    cells[1] = img_path
    lines[1] = ','.join(cells)
    with open(table, 'w') as f:
        f.write('\n'.join(lines))


@pytest.mark.parametrize('data_root', ['/', 'home'])
def test_dataset_root_holding_the_runs_serves_nothing(runs, data_root):
    secret = osp.join(runs['outside'], 'secret.png')
    # '/' or a folder holding the work dir (a home folder, say)
    _widen(runs['bad'], secret,
           '/' if data_root == '/' else runs['base'])
    served, client = _served(runs['root'])
    try:
        for size in ('full', 'thumb'):
            r = client.get(f'/api/runs/{BAD}/images/0',
                           params=dict(size=size))
            assert 'holds the run directories' in error(r, 403)
            assert '--data-dir' in r.json()['detail']
            assert b'\x89PNG' not in r.content
        assert client.get(f'/api/runs/{GOOD}/images/0',
                          params=dict(size='full')).status_code == 200
    finally:
        client.close()
        served.stop()


def test_dataset_root_outside_the_data_dirs_serves_nothing(runs):
    secret = osp.join(runs['outside'], 'secret.png')
    # a narrow folder of its own, but not one the server was given
    _widen(runs['bad'], secret, runs['outside'])
    served, client = _served(runs['root'], data_dirs=[runs['data']])
    try:
        r = client.get(f'/api/runs/{BAD}/images/0', params=dict(size='full'))
        assert 'outside the data folders (--data-dir)' in error(r, 403)
        assert b'\x89PNG' not in r.content
        good = client.get(f'/api/runs/{GOOD}/images/3',
                          params=dict(size='full'))
        with open(osp.join(runs['data'], 'val', '0', '3.png'), 'rb') as f:
            assert good.status_code == 200 and good.content == f.read()
    finally:
        client.close()
        served.stop()


def test_data_prefix_narrows_a_wide_data_root(runs):
    # the folder the image paths start from is the root, not data_root
    secret = osp.join(runs['outside'], 'secret.png')
    _widen(runs['bad'], secret, '/', osp.join(runs['data'], 'val'))
    served, client = _served(runs['root'])
    try:
        r = client.get(f'/api/runs/{BAD}/images/0', params=dict(size='full'))
        assert 'outside the run\'s dataset root' in error(r, 403)
        assert client.get(f'/api/runs/{BAD}/images/1',
                          params=dict(size='full')).status_code == 200
    finally:
        client.close()
        served.stop()


# ---- a link flipped while it is read: checked and opened in one step ----

def _flip(link, targets, stop):
    """Point ``link`` at each target in turn, atomically, until stopped."""
    tmp = link + '.flip'
    i = 0
    while not stop.is_set():
        os.symlink(targets[i % 2], tmp)
        os.replace(tmp, link)
        i += 1


def test_a_flipping_link_never_serves_the_outside_file(runs):
    run = runs['good']
    with open(osp.join(run, 'inside.txt'), 'wb') as f:
        f.write(b'inside')
    os.makedirs(osp.join(run, 'real'))
    with open(osp.join(run, 'real', 'secret.txt'), 'wb') as f:
        f.write(b'inside')
    pack_thumbnails(run, Run(run).image_paths, size=8)
    sheet = osp.join(run, 'thumbs', 'sheet_0.png')
    os.replace(sheet, osp.join(run, 'thumbs', 'real.png'))
    with open(osp.join(runs['outside'], 'secret.png'), 'rb') as f:
        secret_png = f.read()
    flips = [
        # a file, a folder on the way, a thumbnail sheet
        (osp.join(run, 'flip.txt'), ['inside.txt',
                                     osp.join(runs['outside'],
                                              'secret.txt')]),
        (osp.join(run, 'dir'), ['real', runs['outside']]),
        (sheet, ['real.png', osp.join(runs['outside'], 'secret.png')]),
    ]
    urls = [f'/runs/{GOOD}/flip.txt', f'/runs/{GOOD}/dir/secret.txt',
            f'/api/runs/{GOOD}/thumbs/sheet_0.png',
            f'/runs/{GOOD}/thumbs/sheet_0.png']
    with serving(runs['root']) as (url, _):
        stop = threading.Event()
        flippers = [threading.Thread(target=_flip, args=(link, targets,
                                                          stop))
                    for link, targets in flips]
        counts = {'ok': 0, 'refused': 0, 'leaked': 0}
        lock = threading.Lock()

        def read():
            with httpx.Client(base_url=url, timeout=30) as client:
                for i in range(200):
                    r = client.get(urls[i % len(urls)])
                    leaked = SECRET in r.content or r.content == secret_png
                    with lock:
                        counts['leaked' if leaked else 'ok'
                               if r.status_code == 200 else 'refused'] += 1
                    assert r.status_code in (200, 403, 404), r.text
        for t in flippers:
            t.start()
        try:
            readers = [threading.Thread(target=read) for _ in range(4)]
            for t in readers:
                t.start()
            for t in readers:
                t.join(300)
        finally:
            stop.set()
            for t in flippers:
                t.join(30)
    assert counts['leaked'] == 0, counts
    assert counts['ok'] > 0, counts  # the inside file is still served


# ---- hostile files: FIFOs, devices, sparse giants, zip bombs -------------

def _vm_hwm(pid: int) -> int:
    """The peak resident memory of a process, in bytes."""
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    raise AssertionError('no VmHWM')


def test_fifos_in_a_run_hang_nothing(runs):
    root = runs['root']
    fifo_table = make_run(osp.join(root, 'cfg', 'tsne_fifo_table'),
                          runs['data'])
    with serving(root) as (url, _):
        # made once the server is up: a FIFO would otherwise hang its start
        os.remove(osp.join(fifo_table, 'samples.csv'))
        os.mkfifo(osp.join(fifo_table, 'samples.csv'))
        os.remove(osp.join(runs['bad'], 'tsne_feat_3.npy'))
        os.mkfifo(osp.join(runs['bad'], 'tsne_feat_3.npy'))
        selections = osp.join(runs['good'], 'selections')
        os.makedirs(selections)
        fifo_id = '20261123T150348_0123456789ab'
        os.mkfifo(osp.join(selections, f'{fifo_id}.json'))
        open(osp.join(selections, f'{fifo_id}.csv'), 'w').close()
        with httpx.Client(base_url=url, timeout=20) as client:
            body = client.get('/api/runs').json()
            broken = {b['id']: b['error'] for b in body['broken']}
            assert 'not a regular file (a FIFO)' in \
                broken['cfg~tsne_fifo_table']
            assert {r['id'] for r in body['runs']} == {GOOD, BAD}
            detail = error(client.get(f'/api/runs/{BAD}/points'), 400)
            assert 'tsne_feat_3.npy is not a regular file' in detail
            listed = client.get(f'/api/runs/{GOOD}/selections').json()
            assert listed['selections'] == []
            error(client.get(f'/api/runs/{GOOD}/selections/{fifo_id}'), 404)
            assert client.get(f'/api/runs/{GOOD}/points').status_code == 200


def test_devices_and_sparse_giants_are_not_read(runs):
    root = runs['root']
    giant = make_run(osp.join(root, 'cfg', 'tsne_giant'), runs['data'])
    with serving(root) as (url, proc):
        table = osp.join(runs['bad'], 'samples.csv')
        os.remove(table)
        os.symlink('/dev/zero', table)
        # a sparse file: no disk used, yet larger than any table is read
        with open(osp.join(giant, 'samples.csv'), 'r+b') as f:
            f.truncate(MAX_TABLE_BYTES + 1)
        before = _vm_hwm(proc.pid)
        with httpx.Client(base_url=url, timeout=20) as client:
            body = client.get('/api/runs').json()
            broken = {b['id']: b['error'] for b in body['broken']}
            assert 'samples.csv is a symbolic link' in broken[BAD]
            assert f'more than the {MAX_TABLE_BYTES} read' in \
                broken['cfg~tsne_giant']
            assert [r['id'] for r in body['runs']] == [GOOD]
        assert _vm_hwm(proc.pid) - before < 100 << 20


def _npz_bomb(path, shape, data_bytes):
    """An npz whose indices declare ``shape`` int32, with ``data_bytes`` of
    zeros behind the header: deflated, a thousand times smaller."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, dict(
        descr='<i4', fortran_order=False, shape=shape))
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
        with zf.open('indices.npy', 'w', force_zip64=True) as member:
            member.write(header.getvalue())
            chunk = bytes(1 << 22)
            left = data_bytes
            while left > 0:
                member.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)
        for name, value in (('distances', np.zeros((N, 3), np.float32)),
                            ('metric', np.array('cosine'))):
            out = io.BytesIO()
            np.save(out, value)
            zf.writestr(f'{name}.npy', out.getvalue())


@pytest.mark.parametrize('shape,data_bytes', [
    ((N, 10_000_000), 4 * N * 10_000_000),  # 480 MB in a 0.5 MB file
    ((10 ** 9, 9), 1 << 20),  # 36 GB declared
])
def test_npz_bomb_is_refused_from_its_header(runs, shape, data_bytes):
    path = osp.join(runs['bad'], 'neighbors_feat_3.npz')
    _npz_bomb(path, shape, data_bytes)
    assert osp.getsize(path) < 2 << 20
    with serving(runs['root']) as (url, proc):
        with httpx.Client(base_url=url, timeout=60) as client:
            # the route's imports and a neighbour search, before measuring
            assert client.get(f'/api/runs/{GOOD}/neighbors/0').status_code \
                == 200
            before = _vm_hwm(proc.pid)
            started = time.monotonic()
            detail = error(client.get(f'/api/runs/{BAD}/neighbors/0'), 400)
            assert 'neighbors_feat_3.npz declares indices of shape' in detail
            assert 'run the neighbors step again' in detail
            assert time.monotonic() - started < 10
            assert _vm_hwm(proc.pid) - before < 100 << 20
            assert client.get(f'/api/runs/{GOOD}/neighbors/1').status_code \
                == 200


# ---- file names recorded in the run, and the run logs a job reads ---------

def test_placed_layer_named_outside_the_run_is_not_read(runs):
    layer = osp.join(runs['outside'], 'layer.csv')
    with open(layer, 'w') as f:
        f.write('img_path,feat_3_x,feat_3_y\nSECRET-ROW,0.5,0.5\n')
    manifest = osp.join(runs['bad'], 'run.json')
    with open(manifest) as f:
        body = json.load(f)
    body['placed'] = {'leak': {'file': layer, 'key': 'feat_3'}}
    write_json(manifest, body)
    served, client = _served(runs['root'])
    try:
        r = client.get(f'/runs/{BAD}/')
        assert 'is outside' in error(r, 400) and 'SECRET-ROW' not in r.text
        assert client.get(f'/runs/{GOOD}/').status_code == 200
    finally:
        client.close()
        served.stop()


@pytest.mark.parametrize('planted', ['link', 'fifo'])
def test_a_job_reads_no_planted_log(tmp_path, planted):
    from tsneviz.server.jobs import _last_log_line

    work = tmp_path / 'work'
    (work / 'tsne_1').mkdir(parents=True)
    (work / 'tsne_1' / 'tsne.log').write_text('extracting\n')
    (work / 'tsne_2').mkdir()
    log = str(work / 'tsne_2' / 'tsne.log')  # the newest: what is read
    if planted == 'link':
        (tmp_path / 'secret.txt').write_bytes(SECRET)
        os.symlink(str(tmp_path / 'secret.txt'), log)
    else:
        os.mkfifo(log)
    found = []
    reader = threading.Thread(target=lambda: found.append(
        _last_log_line(str(work), time.time() - 60)), daemon=True)
    reader.start()
    reader.join(10)
    assert found == [None]  # neither the secret nor a hang
