"""Packed thumbnails (tsneviz.rundir.thumbs) on real image files."""
import json
import logging
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from tsneviz.errors import UserError
from tsneviz.rundir import thumbs as packing
from tsneviz.rundir.thumbs import (
    pack_thumbnails,
    packed_for,
    read_packed,
    thumb_ids,
)


def _image(path, size, value, mode='RGB'):
    os.makedirs(osp.dirname(path), exist_ok=True)
    rng = np.random.default_rng(value)
    if mode == 'RGB':
        pixels = rng.integers(0, 256, size[::-1] + (3,), dtype=np.uint8)
    else:
        pixels = rng.integers(0, 256, size[::-1], dtype=np.uint8)
    pixels[0, 0] = value  # one known pixel
    Image.fromarray(pixels, mode).save(path)
    return path


@pytest.fixture
def images(tmp_path):
    """Ten distinct images of several sizes and modes."""
    folder = tmp_path / 'images'
    out = []
    for i in range(10):
        size = [(20, 12), (100, 50), (64, 64), (7, 90), (32, 32)][i % 5]
        out.append(_image(str(folder / f'{i}.png'), size, 10 + i,
                          'L' if i % 3 == 0 else 'RGB'))
    return out


def _expected(path, size):
    from tsneviz.data.display import to_display
    with Image.open(path) as image:
        image = to_display(image, grey=True)
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        return np.asarray(image.convert('RGB'))


def test_thumb_ids_number_distinct_images_in_order_of_first_use():
    assert thumb_ids(['b', 'a', 'b', 'c', 'a']).tolist() == [0, 1, 0, 2, 1]
    assert thumb_ids([]).tolist() == []


def test_every_cell_holds_its_image_shrunk_never_enlarged(images, tmp_path):
    run_dir = str(tmp_path / 'run')
    os.makedirs(run_dir)
    # samples repeat images: one cell per distinct path
    paths = images + images[:4]
    packed = pack_thumbnails(run_dir, paths, size=32, sheet_px=96)
    assert packed.ids.tolist() == list(range(10)) + [0, 1, 2, 3]
    assert len(packed) == 10
    # 3 x 3 cells of 32 px per sheet: 10 thumbnails need two sheets
    assert [s['file'] for s in packed.sheets] == ['sheet_0.png',
                                                  'sheet_1.png']
    for i, path in enumerate(images):
        with Image.open(path) as image:
            w, h = image.size
        scale = min(1.0, 32 / max(w, h))
        got = packed.image(i)
        assert got.size == (max(1, round(w * scale)),
                            max(1, round(h * scale))), (path, got.size)
        assert max(got.size) <= 32
        np.testing.assert_array_equal(np.asarray(got.convert('RGB')),
                                      _expected(path, 32))
    # a cell's place is fixed by its number
    assert packed.locate(4) == (0, 32, 32, 32, 32)
    assert packed.locate(9)[:3] == (1, 0, 0)
    # the small image is stored as it is
    assert packed.image(0).size == (20, 12)
    # the index read back is the same
    again = read_packed(run_dir)
    assert again.ids.tolist() == packed.ids.tolist()
    assert again.sizes.tolist() == packed.sizes.tolist()
    for name in ('index.json', 'index.js', 'sheet_0.png', 'sheet_1.png'):
        assert osp.isfile(osp.join(run_dir, 'thumbs', name))


def test_sixteen_bit_images_are_rescaled(tmp_path):
    path = str(tmp_path / 'grey16.png')
    values = np.full((24, 24), 32768, np.uint16)
    Image.fromarray(values).save(path)
    packed = pack_thumbnails(str(tmp_path), [path], size=16)
    assert packed.image(0).convert('L').getpixel((5, 5)) == 128


def test_broken_and_missing_images_have_no_thumbnail(images, tmp_path,
                                                     caplog):
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not a png')
    paths = [images[0], str(broken), str(tmp_path / 'missing.png'),
             images[1], str(broken)]
    with caplog.at_level(logging.WARNING, logger='tsneviz.rundir.thumbs'):
        packed = pack_thumbnails(str(tmp_path), paths, size=16)
    assert packed.ids.tolist() == [0, -1, -1, 3, -1]
    assert packed.failed == 2
    assert packed.image(1) is None and packed.thumbnail(1) is None
    assert '2 of 4 images could not be read' in caplog.text


def test_reused_when_paths_and_size_match(images, tmp_path):
    run_dir = str(tmp_path)
    first = pack_thumbnails(run_dir, images, size=24)
    index = osp.join(run_dir, 'thumbs', 'index.json')
    stamp = os.stat(index).st_mtime_ns
    # same paths and size: nothing decoded or written
    assert pack_thumbnails(run_dir, images, size=24).digest == first.digest
    assert os.stat(index).st_mtime_ns == stamp
    assert packed_for(run_dir, images).cell == 24
    # another size, or other paths: packed again
    assert pack_thumbnails(run_dir, images, size=16).cell == 16
    other = packed_for(run_dir, images[:3])
    assert other.cell == packing.DEFAULT_CELL and len(other) == 3
    assert not other.matches(images)


def test_repack_leaves_no_stale_sheets_or_files_per_image(images, tmp_path):
    run_dir = str(tmp_path)
    os.makedirs(osp.join(run_dir, 'thumbs'))
    _image(osp.join(run_dir, 'thumbs', '0.png'), (8, 8), 1)  # older layout
    pack_thumbnails(run_dir, images, size=16, sheet_px=32)  # 3 sheets
    assert len(read_packed(run_dir).sheets) == 3
    pack_thumbnails(run_dir, images, size=16, sheet_px=64)  # 1 sheet
    assert sorted(os.listdir(osp.join(run_dir, 'thumbs'))) == [
        'index.js', 'index.json', 'sheet_0.png']


def test_index_script_is_the_index_for_the_page(images, tmp_path):
    packed = pack_thumbnails(str(tmp_path), images, size=16)
    text = open(osp.join(tmp_path, 'thumbs', 'index.js')).read()
    prefix = 'window.__tsneviz_thumbs = '
    assert text.startswith(prefix) and text.endswith(';\n')
    script = json.loads(text[len(prefix):-2])
    index = json.load(open(osp.join(tmp_path, 'thumbs', 'index.json')))
    assert script == {k: v for k, v in index.items()
                      if k not in ('ids', 'paths_sha256')}
    assert script['cell'] == packed.cell and script['count'] == 10


@pytest.mark.parametrize('threaded', [False, True])
def test_process_pool_packs_the_same(images, tmp_path, monkeypatch,
                                     threaded):
    import threading

    many = images * 3 + [p + '.missing' for p in images[:2]]
    serial = pack_thumbnails(str(tmp_path / 'a'), many, size=16, workers=1)
    monkeypatch.setattr(packing, 'POOL_MIN_IMAGES', 2)
    monkeypatch.setattr(packing, '_CHUNK', 3)
    # another thread alive (as in the server): workers are spawned, not
    # forked
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    if threaded:
        other.start()
    try:
        pooled = pack_thumbnails(str(tmp_path / 'b'), many, size=16,
                                 workers=2)
    finally:
        done.set()
    assert pooled.ids.tolist() == serial.ids.tolist()
    assert pooled.sizes.tolist() == serial.sizes.tolist()
    a = np.asarray(Image.open(tmp_path / 'a' / 'thumbs' / 'sheet_0.png'))
    b = np.asarray(Image.open(tmp_path / 'b' / 'thumbs' / 'sheet_0.png'))
    np.testing.assert_array_equal(a, b)


def test_damaged_index_and_bad_sizes_are_user_errors(images, tmp_path):
    with pytest.raises(UserError, match='thumbnail size'):
        pack_thumbnails(str(tmp_path), images, size=4)
    with pytest.raises(UserError, match='sheet_px'):
        pack_thumbnails(str(tmp_path), images, size=64, sheet_px=32)
    pack_thumbnails(str(tmp_path), images, size=16)
    os.remove(osp.join(tmp_path, 'thumbs', 'sheet_0.png'))
    with pytest.raises(UserError, match='sheet_0.png is missing'):
        read_packed(str(tmp_path))
    with open(osp.join(tmp_path, 'thumbs', 'index.json'), 'w') as f:
        f.write('{"format": 1, "cell"')
    with pytest.raises(UserError, match='damaged'):
        read_packed(str(tmp_path))
