"""The projector export, read by a real TensorBoard's projector plugin."""
import io
import json
import math
import os
import os.path as osp
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, make_demo_run
from tsneviz.errors import UserError
from tsneviz.exporters import export_projector, export_run
from tsneviz.exporters.projector import (
    MAX_SPRITE_PX,
    thumbnail_size_for,
    write_config,
)
from tsneviz.rundir import Run, read_table

pytest.importorskip('tensorboard')

PER_CLASS = 12  # 120 digits: an 11 x 11 sprite grid with a partial last row


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory, digits_options):
    work_dir = str(tmp_path_factory.mktemp('projector') / 'work')
    return make_demo_run(work_dir, digits_options, max_num_samples=PER_CLASS,
                         tsne=dict(perplexity=10.0, n_iter=400))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class TensorBoard:
    """A ``tensorboard --logdir`` subprocess on loopback, for one test."""

    def __init__(self, logdir: str, log_path: str):
        self.port = _free_port()
        self.log = open(log_path, 'wb')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'tensorboard.main', '--logdir', logdir,
             '--host', '127.0.0.1', '--port', str(self.port),
             # The pure-Python loader: no data-server binary to start.
             '--load_fast=false'],
            stdout=self.log, stderr=subprocess.STDOUT)
        self._wait()

    def _wait(self, timeout: float = 90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise AssertionError('tensorboard exited with '
                                     f'{self.proc.returncode}: '
                                     f'{open(self.log.name).read()[-2000:]}')
            try:
                self.get('runs')
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        self.stop()
        raise AssertionError(f'tensorboard did not answer in {timeout} s')

    def get(self, route: str, **params) -> bytes:
        query = urllib.parse.urlencode(params)
        url = (f'http://127.0.0.1:{self.port}/data/plugin/projector/{route}'
               + (f'?{query}' if query else ''))
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read()

    def json(self, route: str, **params):
        return json.loads(self.get(route, **params))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def tensorboard(tmp_path):
    started = []

    def start(logdir):
        started.append(TensorBoard(logdir, str(tmp_path / 'tb.log')))
        return started[-1]

    yield start
    for tb in started:
        tb.stop()


@pytest.fixture(scope='module')
def exported(run_dir):
    return export_projector(run_dir)


def test_tensorboard_lists_our_tensors_with_shape_metadata_and_sprite(
        run_dir, exported, tensorboard):
    run = Run(run_dir)
    n = len(run)
    tb = tensorboard(osp.join(run_dir, 'projector'))
    assert tb.json('runs') == ['.']
    info = tb.json('info', run='.')
    by_name = {e['tensorName']: e for e in info['embeddings']}
    assert set(by_name) == {'feat_3', 'tsne_feat_3'}
    assert by_name['feat_3']['tensorShape'] == [n, 128]
    assert by_name['tsne_feat_3']['tensorShape'] == [n, 2]
    size = thumbnail_size_for(n)
    for emb in by_name.values():
        assert emb['metadataPath'] == 'metadata.tsv'
        assert emb['sprite'] == {'imagePath': 'sprite.png',
                                 'singleImageDim': [size, size]}

    # the tensors TensorBoard serves are our float32 values, bit for bit
    for name, expected in (('feat_3', run.features('feat_3')),
                           ('tsne_feat_3', run.coords('feat_3'))):
        data = np.frombuffer(tb.get('tensor', run='.', name=name),
                             dtype=np.float32)
        np.testing.assert_array_equal(data.reshape(expected.shape),
                                      expected.astype(np.float32))


def test_metadata_served_has_header_and_one_row_per_sample(
        run_dir, exported, tensorboard):
    table = read_table(osp.join(run_dir, 'samples.csv'))
    tb = tensorboard(osp.join(run_dir, 'projector'))
    text = tb.get('metadata', run='.', name='feat_3').decode()
    lines = text.rstrip('\n').split('\n')
    header = lines[0].split('\t')
    assert header[:4] == ['label', 'gt_label', 'prediction', 'correct']
    assert {'loss', 'score', 'index', 'path'} <= set(header)
    rows = [dict(zip(header, line.split('\t'))) for line in lines[1:]]
    assert len(rows) == len(table['index'])
    # class names stay names ('3', not '3.0'), rows in sample order
    assert [r['label'] for r in rows] == table['gt_class']
    assert [r['prediction'] for r in rows] == table['pred_class']
    assert [r['path'] for r in rows] == table['img_path']
    assert [r['correct'] == 'true' for r in rows] == \
        [p == g for p, g in zip(table['pred_label'], table['gt_label'])]
    np.testing.assert_allclose([float(r['loss']) for r in rows],
                               [float(v) for v in table['loss']], rtol=1e-5)


def _reference_thumbnail(path, size):
    # An independent resize: the digit images are square, so fitting them
    # into a square thumbnail is a plain bicubic resize.
    with Image.open(path) as image:
        return np.asarray(image.convert('RGB').resize(
            (size, size), Image.BICUBIC), dtype=np.float32)


def test_sprite_served_holds_every_thumbnail_in_sample_order(
        run_dir, exported, tensorboard):
    run = Run(run_dir)
    n, paths = len(run), run.image_paths
    tb = tensorboard(osp.join(run_dir, 'projector'))
    sprite = Image.open(io.BytesIO(tb.get('sprite_image', run='.',
                                          name='feat_3')))
    size = thumbnail_size_for(n)
    grid = math.ceil(math.sqrt(n))
    assert sprite.size == (grid * size, grid * size)
    assert max(sprite.size) <= MAX_SPRITE_PX
    pixels = np.asarray(sprite.convert('RGB'), dtype=np.float32)
    refs = np.stack([_reference_thumbnail(p, size) for p in paths])
    for i in range(n):
        row, col = divmod(i, grid)
        cell = pixels[row * size:(row + 1) * size,
                      col * size:(col + 1) * size]
        diffs = np.abs(refs - cell).mean(axis=(1, 2, 3))
        # thumbnail i is image i (and no other image of the run fits better)
        assert diffs[i] < 2.0, (i, diffs[i])
        assert int(np.argmin(diffs)) == i or diffs[i] == diffs.min()
    # the cells after the last thumbnail are empty (white)
    last_row, last_col = divmod(n - 1, grid)
    assert (pixels[last_row * size:, (last_col + 1) * size:] == 255).all()


def test_sprite_cells_are_the_packed_thumbnails_downscaled(run_dir,
                                                         exported, tmp_path):
    from tsneviz.rundir.thumbs import read_packed

    run = Run(run_dir)
    packed = read_packed(run_dir)  # packed by the export, none before
    assert packed is not None and packed.matches(run.image_paths)
    assert packed.cell == 64 and len(packed.ids) == len(run)
    out = str(tmp_path / 'proj16')
    export_projector(run_dir, out=out, thumbnail_size=16, coords=False)
    sprite = np.asarray(Image.open(osp.join(out, 'sprite.png')).convert(
        'RGB'), dtype=np.float32)
    n, grid, size = len(run), math.ceil(math.sqrt(len(run))), 16
    # the packed digits are square: fitting one into a square cell is a
    # plain bicubic resize
    refs = np.stack([np.asarray(packed.image(i).convert('RGB').resize(
        (size, size), Image.BICUBIC), dtype=np.float32) for i in range(n)])
    for i in range(n):
        row, col = divmod(i, grid)
        cell = sprite[row * size:(row + 1) * size,
                      col * size:(col + 1) * size]
        np.testing.assert_array_equal(cell, refs[i])
        diffs = np.abs(refs - cell).mean(axis=(1, 2, 3))
        assert diffs[i] == diffs.min()


def test_binary_tensors_are_read_by_tensorboard(run_dir, tmp_path,
                                                tensorboard):
    out = str(tmp_path / 'proj_bytes')
    paths = export_run(run_dir, 'projector', out=out, key='feat_3',
                       tensor_format='bytes', sprite=False)
    assert {osp.basename(p) for p in paths} == {
        'feat_3.bytes', 'tsne_feat_3.bytes', 'metadata.tsv',
        'projector_config.pbtxt'}
    tb = tensorboard(out)
    info = tb.json('info', run='.')
    assert all('sprite' not in e for e in info['embeddings'])
    feats = Run(run_dir).features('feat_3')
    data = np.frombuffer(tb.get('tensor', run='.', name='feat_3'),
                         dtype=np.float32)
    np.testing.assert_array_equal(data.reshape(feats.shape), feats)


def test_export_is_recorded_in_the_manifest_last(run_dir):
    exported = export_projector(run_dir)
    manifest = Run(run_dir).manifest
    entry = manifest['exports']['projector']
    assert entry['out'] == 'projector'
    assert entry['files'][-1] == 'projector/projector_config.pbtxt'
    for name in entry['files']:
        assert name in manifest['outputs']
        assert osp.isfile(osp.join(run_dir, name))
    # run.json is written after every export file
    newest = max(osp.getmtime(p) for p in exported)
    assert osp.getmtime(osp.join(run_dir, 'run.json')) >= newest
    assert not [f for f in os.listdir(osp.join(run_dir, 'projector'))
                if f.startswith('.tmp_')]


def test_config_text_parses_as_tensorboard_proto(tmp_path):
    from google.protobuf import text_format
    from tensorboard.plugins.projector import ProjectorConfig
    path = write_config(str(tmp_path / 'c.pbtxt'), [dict(
        tensor_name='a "quoted" \\ näme', tensor_path='a.tsv',
        tensor_shape=[3, 4], metadata_path='m.tsv',
        sprite=dict(image_path='s.png', single_image_dim=[8, 8]))])
    config = text_format.Parse(open(path).read(), ProjectorConfig())
    emb = config.embeddings[0]
    assert emb.tensor_name == 'a "quoted" \\ näme'
    assert list(emb.tensor_shape) == [3, 4]
    assert list(emb.sprite.single_image_dim) == [8, 8]


def test_thumbnail_size_respects_the_sprite_limit():
    assert thumbnail_size_for(120) == 64
    assert thumbnail_size_for(10000) == 64  # 100 x 100 grid: 81 would fit
    assert thumbnail_size_for(20000) == 57  # 142 x 142 grid in 8192 px
    assert thumbnail_size_for(120, 200) == 200
    for n in (1, 2, 5000, 123457, 1_000_000):
        grid = math.ceil(math.sqrt(n))
        assert grid * thumbnail_size_for(n) <= MAX_SPRITE_PX
    with pytest.raises(UserError, match='at most 81'):
        thumbnail_size_for(10000, 100)
    with pytest.raises(UserError, match='do not fit'):
        thumbnail_size_for(MAX_SPRITE_PX ** 2 + 1)


def test_bad_option_is_a_user_error(run_dir, tmp_path):
    with pytest.raises(UserError, match='tensor_format'):
        export_projector(run_dir, out=str(tmp_path / 'x'),
                         tensor_format='npy')
    with pytest.raises(UserError, match='sprite'):
        export_projector(run_dir, out=str(tmp_path / 'x'), sprite='yes')


def test_cli_exports_and_fails_in_one_line(run_dir, tmp_path):
    script = osp.join(REPO, 'tools', 'export.py')
    out = str(tmp_path / 'cli_projector')
    ok = subprocess.run([sys.executable, script, run_dir, '--format',
                         'projector', '--out', out, '--thumbnail-size', '16'],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split()[-1] == osp.join(out, 'projector_config.pbtxt')
    assert 'single_image_dim: 16' in open(
        osp.join(out, 'projector_config.pbtxt')).read()

    bad = subprocess.run([sys.executable, script, run_dir, '--format',
                          'tensorflow'], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.count('\n') == 1 and 'Traceback' not in bad.stderr
    assert bad.stderr.startswith("error: unknown export format 'tensorflow'")
    for name in ('bulk', 'csv', 'parquet', 'projector'):
        assert name in bad.stderr
