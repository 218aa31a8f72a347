"""One bad input must not take the server down: bombs, races, idle floods.

- Decompression bombs on ``POST /place`` (a 109 KB PNG of 30000x30000, a
  PPM or JPEG header of 60000x60000, a 17.5 KB 1-bit PNG of 12000x12000)
  are refused from their header with a one-line 422; placements take
  turns, so the server's memory stays bounded under 20 hostile ones at
  once (measured on a real ``tools/serve.py``: its peak RSS).
- 20 placements at once all succeed: the run's model is loaded once and
  shared, and the checkpoint allowlist is no longer raced.
- Idle sockets and sockets trickling their headers are closed on a
  deadline, and a flood of them does not turn a normal request away.

The run is a real demo run (the committed tiny model on the test digits);
the images are real files, the bombs real headers over tiny payloads.
"""
import io
import math
import os
import os.path as osp
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import DEMO_CHECKPOINT, make_demo_run
from tests.test_server.test_app import make_run
from tests.test_server.test_security import SERVE, serving
from tsneviz.server.app import create_app
from tsneviz.server.errors import TooManyRequests
from tsneviz.server.images import MAX_PIXELS
from tsneviz.server.routes import place as place_route

SIDE = math.isqrt(MAX_PIXELS)


def png_1bit(width, height):
    """A black 1-bit PNG, compressed row by row (never held decoded)."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

    row = bytes(1 + (width + 7) // 8)  # filter byte, then the bits
    z = zlib.compressobj(9)
    idat = b''.join(z.compress(row) for _ in range(height)) + z.flush()
    return (b'\x89PNG\r\n\x1a\n' +
            chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 1, 0, 0,
                                       0, 0)) +
            chunk(b'IDAT', idat) + chunk(b'IEND', b''))


def jpeg_header(width, height):
    """A real 16x16 JPEG whose frame header claims ``width x height``."""
    out = io.BytesIO()
    Image.new('RGB', (16, 16)).save(out, 'JPEG')
    data = bytearray(out.getvalue())
    sof = data.index(b'\xff\xc0')  # baseline frame: length, precision, h, w
    data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
    return bytes(data)


BOMBS = {
    'png-30000': lambda: png_1bit(30000, 30000),
    'png-12000-1bit': lambda: png_1bit(12000, 12000),
    'png-just-over-the-cap': lambda: png_1bit(SIDE + 1, SIDE),
    'ppm-60000': lambda: b'P6\n60000 60000\n255\n' + bytes(1000),
    'jpeg-60000': lambda: jpeg_header(60000, 60000),
}


@pytest.fixture(scope='module')
def demo(tmp_path_factory, digits_options):
    """A real demo run in a work dir, and a digit image of each class."""
    work = tmp_path_factory.mktemp('untrusted_load') / 'work'
    run_dir = make_demo_run(work, digits_options, max_num_samples=10,
                            tsne=dict(perplexity=8.0, n_iter=300))
    root = digits_options['test_dataloader.dataset.data_root']
    digits = {}
    for label in range(10):
        folder = osp.join(root, 'train', str(label))
        digits[label] = osp.join(folder, sorted(os.listdir(folder))[0])
    return dict(work=str(work), run_dir=run_dir, digits=digits)


@pytest.fixture(scope='module')
def client(demo):
    client = TestClient(create_app(demo['work']),
                        base_url='http://127.0.0.1')
    run_id = client.get('/api/runs').json()['runs'][0]['id']
    return client, f'/api/runs/{run_id}/place'


def _upload(data, name='upload.png'):
    return {'image': (name, data, 'application/octet-stream')}


def _read(path):
    with open(path, 'rb') as f:
        return f.read()


# ---- 7. decompression bombs, and placements taking turns -----------------

@pytest.mark.parametrize('bomb', sorted(BOMBS))
def test_bombs_are_refused_from_their_header(client, bomb):
    client, url = client
    data = BOMBS[bomb]()
    assert len(data) < 200_000  # a small upload, far under the body limit
    reply = client.post(url, files=_upload(data))
    assert reply.status_code == 422, reply.text[:300]
    detail = reply.json()['detail']
    assert 'pixels' in detail and 'scaled down' in detail, detail
    assert '\n' not in detail and 'Traceback' not in detail


def test_an_image_at_the_cap_is_placed(client):
    client, url = client
    reply = client.post(url, files=_upload(png_1bit(SIDE, SIDE)))
    assert reply.status_code == 200, reply.text[:300]


@pytest.mark.parametrize('side', [30000, 12000])
def test_dataset_image_bombs_get_no_thumbnail(tmp_path, side):
    # a run whose dataset holds a bomb: its thumbnail is refused from the
    # header, never decoded (the full file is still only sent, not read)
    root, data = tmp_path / 'work', tmp_path / 'data'
    make_run(str(root / 'cfg' / 'tsne_a'), str(data))
    bomb = data / 'val' / '0' / '0.png'
    bomb.write_bytes(png_1bit(side, side))
    client = TestClient(create_app(str(root)), base_url='http://127.0.0.1')
    reply = client.get('/api/runs/cfg~tsne_a/images/0?size=thumb')
    assert reply.status_code == 403, reply.text[:300]
    assert 'pixels' in reply.json()['detail']
    assert client.get('/api/runs/cfg~tsne_a/images/1?size=thumb') \
        .status_code == 200


def test_placements_wait_their_turn_then_get_429():
    turns = place_route._Turns(slots=1, queue=1, wait=0.3)
    inside, leave = threading.Event(), threading.Event()

    def hold():
        with turns.turn():
            inside.set()
            leave.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(10)
        waited = []

        def wait_for_turn():
            try:
                with turns.turn():
                    waited.append('turn')
            except TooManyRequests as err:
                waited.append(str(err))

        waiter = threading.Thread(target=wait_for_turn)
        waiter.start()
        deadline = time.time() + 10
        while turns._waiting < 1:
            assert time.time() < deadline, 'the waiter never queued'
            time.sleep(0.01)
        # the one queue place is taken while the waiter waits: refused
        with pytest.raises(TooManyRequests, match='waiting already'):
            with turns.turn():
                pass
        waiter.join(10)
        assert waited and 'busy' in waited[0], waited
    finally:
        leave.set()
        holder.join(10)
    with turns.turn():  # free again once the slot is given back
        pass


def _peak_rss_mb(pid):
    with open(f'/proc/{pid}/status') as f:
        fields = dict(line.split(':', 1) for line in f)
    return int(fields['VmHWM'].split()[0]) / 1024


#: What 20 hostile placements at once may add to the server's peak RSS:
#: one image of MAX_PIXELS decoded at a time (about 210 MB) plus the
#: placements' own arrays. Before, 6 images of that size at once took
#: 1.3 GB, and 20 of the 12000x12000 bombs 7.3 GB.
RSS_BOUND_MB = 450


@pytest.mark.slow
def test_twenty_hostile_placements_keep_memory_bounded(demo):
    # 14 bombs of every kind and 6 images at the cap, all at once, against
    # a real server; its header deadline (2 s) is shorter than a placement
    # takes, so requests in progress are not cut off by it
    uploads = [BOMBS[name]() for name in sorted(BOMBS)] * 3
    uploads = uploads[:14] + [png_1bit(SIDE, SIDE)] * 6
    with serving(demo['work'], '--header-timeout', '2') as (url, proc):
        run_id = httpx.get(url + '/api/runs').json()['runs'][0]['id']
        place = f'{url}/api/runs/{run_id}/place'
        warm = httpx.post(place, files=_upload(_read(demo['digits'][3])),
                          timeout=300)
        assert warm.status_code == 200, warm.text
        before = _peak_rss_mb(proc.pid)

        def send(data):
            return httpx.post(place, files=_upload(data), timeout=300)

        with ThreadPoolExecutor(len(uploads)) as pool:
            replies = list(pool.map(send, uploads))
        added = _peak_rss_mb(proc.pid) - before
    codes = [r.status_code for r in replies]
    # no 5xx; an image at the cap is placed, or on a slow machine may wait
    # past PLACE_WAIT_S and be told to come back (429)
    assert codes[:14] == [422] * 14 and 200 in codes[14:] and \
        set(codes[14:]) <= {200, 429}, [r.text[:200] for r in replies]
    print(f'peak RSS {before:.0f} MB after warm-up, +{added:.0f} MB under '
          '20 hostile placements at once')
    assert added < RSS_BOUND_MB, added


# ---- 8. concurrent placements ---------------------------------------------

def test_twenty_placements_at_once_all_succeed(client, demo, monkeypatch):
    import tsneviz.model
    from tsneviz.analysis import neighbors

    client, url = client
    built = []
    build_model = tsneviz.model.build_model

    def counting(*args, **kwargs):
        built.append(1)
        return build_model(*args, **kwargs)

    monkeypatch.setattr(tsneviz.model, 'build_model', counting)
    monkeypatch.setattr(neighbors, '_MODELS', type(neighbors._MODELS)())
    labels = [i % 10 for i in range(20)]
    start = threading.Barrier(len(labels))

    def one(label):
        data = _read(demo['digits'][label])
        start.wait(30)
        return client.post(url + '?k=3', files=_upload(data))

    with ThreadPoolExecutor(len(labels)) as pool:
        replies = list(pool.map(one, labels))
    assert [r.status_code for r in replies] == [200] * 20, \
        [r.text[:200] for r in replies if r.status_code != 200]
    assert [r.json()['pred_class'] for r in replies] == \
        [str(label) for label in labels]
    # the same image gives the same answer, whoever came first
    for r, again in zip(replies[:10], replies[10:]):
        np.testing.assert_allclose([r.json()['x'], r.json()['y']],
                                   [again.json()['x'], again.json()['y']],
                                   atol=1e-3)
    assert len(built) == 1  # the model was loaded once, and shared


def test_a_replaced_checkpoint_is_checked_again(demo, tmp_path):
    # the kept model is kept only while its checkpoint stays as it was
    from tsneviz.analysis.neighbors import embed_images
    from tsneviz.errors import UserError
    from tsneviz.rundir import Run, update_manifest

    run_dir = str(tmp_path / 'run')
    shutil.copytree(demo['run_dir'], run_dir)
    checkpoint = tmp_path / 'model.pth'
    shutil.copy(DEMO_CHECKPOINT, checkpoint)
    info = dict(Run(run_dir).manifest['checkpoint'], path=str(checkpoint))
    update_manifest(run_dir, {'checkpoint': info})
    image = demo['digits'][5]
    feats, _ = embed_images(run_dir, [image])
    again, _ = embed_images(run_dir, [image])  # through the kept model
    np.testing.assert_array_equal(feats, again)
    with open(checkpoint, 'ab') as f:
        f.write(bytes(16))  # another file now: its sha256 differs
    with pytest.raises(UserError, match='changed since the run'):
        embed_images(run_dir, [image])


def test_checkpoint_loads_from_threads_at_once():
    import torch

    from tsneviz.checkpoint import load_checkpoint

    start = threading.Barrier(12)

    def load(_):
        start.wait(30)
        return load_checkpoint(DEMO_CHECKPOINT)

    with ThreadPoolExecutor(12) as pool:
        loaded = list(pool.map(load, range(12)))
    first = loaded[0]['state_dict']
    for checkpoint in loaded[1:]:
        assert all(torch.equal(first[k], checkpoint['state_dict'][k])
                   for k in first)


# ---- 9. idle and slow clients ---------------------------------------------

def _closed_by_server(socks, deadline):
    """Wait until the server closed every socket; those still open."""
    still = set(socks)
    while still and time.time() < deadline:
        ready, _, _ = select.select(list(still), [], [], 0.2)
        for s in ready:
            try:
                data = s.recv(4096)
            except OSError:
                data = b''
            if not data:
                still.discard(s)
    return still


def test_idle_and_slow_header_floods_do_not_block_requests(demo):
    timeout = 5
    # more sockets than --max-connections (256): idle ones make room
    with serving(demo['work'], '--header-timeout', str(timeout)) as \
            (url, _):
        port = int(url.rsplit(':', 1)[1])
        opened = time.time()
        idle = [socket.create_connection(('127.0.0.1', port))
                for _ in range(300)]
        slow = [socket.create_connection(('127.0.0.1', port))
                for _ in range(30)]
        stop = threading.Event()

        def trickle():
            # a header at a byte every 0.2 s, never complete
            head = b'GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: '
            head += b'a' * 1000
            for i in range(len(head)):
                for s in slow:
                    try:
                        s.send(head[i:i + 1])
                    except OSError:
                        pass  # closed by the server
                if stop.wait(0.2):
                    return

        trickler = threading.Thread(target=trickle)
        trickler.start()
        try:
            started = time.time()
            reply = httpx.get(url + '/api/runs', timeout=timeout - 2)
            assert reply.status_code == 200, reply.text
            assert time.time() - started < timeout - 2
            # every idle and trickling socket is closed within the deadline
            left = _closed_by_server(idle + slow,
                                     opened + timeout + 3)
            assert not left, f'{len(left)} sockets still open'
            assert httpx.get(url + '/api/runs').status_code == 200
        finally:
            stop.set()
            trickler.join(10)
            for s in idle + slow:
                s.close()


def test_header_timeout_must_be_positive(tmp_path):
    r = subprocess.run([sys.executable, SERVE, str(tmp_path),
                        '--header-timeout', '0'], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    assert '--header-timeout' in r.stderr and 'positive' in r.stderr
    assert 'Traceback' not in r.stderr
