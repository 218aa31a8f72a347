"""High-bit-depth images are rescaled for display, not clipped to white.

A 16-bit PNG of value 32768 (mid-grey) is written at test time and read by
every place that shows images: neighbour grids, explorer thumbnails, the
projector sprite and the server's thumbnails.
"""
import io

import numpy as np
import pytest
from PIL import Image

from tsneviz.data.display import open_for_display, to_display

MID = 32768  # mid-grey in 16 bits; 128 in 8


@pytest.fixture
def grey16(tmp_path):
    path = str(tmp_path / 'grey16.png')
    values = np.full((24, 24), MID, np.uint16)
    values[:, :12] = 65535  # left half white, to see both ends
    Image.fromarray(values).save(path)
    with Image.open(path) as img:
        # the case at hand: Pillow's own conversion clips it to white
        assert img.mode.startswith('I')
        assert img.convert('RGB').getpixel((20, 5)) == (255, 255, 255)
    return path


def test_open_for_display_rescales_16_bit(grey16):
    img = open_for_display(grey16)
    assert img.mode == 'RGB'
    assert img.getpixel((20, 5)) == (128, 128, 128)
    assert img.getpixel((2, 5)) == (255, 255, 255)


@pytest.mark.parametrize('mode, value, expected', [
    ('I;16', MID, 128),
    ('I', MID, 128),     # 16-bit data in a 32-bit image
    ('I', 100, 100),     # 8-bit data in a 32-bit image
    ('F', 0.5, 128),     # float in 0..1
    ('L', 77, 77),
])
def test_to_display_modes(mode, value, expected):
    img = to_display(Image.new(mode, (4, 4), value))
    assert img.mode == 'RGB'
    assert img.getpixel((0, 0)) == (expected, ) * 3


def test_float_outside_0_1_is_stretched_and_alpha_kept():
    values = np.array([[-2.0, 0.0], [1.0, 2.0]], np.float32)
    img = to_display(Image.fromarray(values, 'F'))
    assert [img.getpixel((x, y))[0] for y in (0, 1) for x in (0, 1)] == \
        [0, 128, 191, 255]
    assert to_display(Image.new('LA', (2, 2), (50, 10))).getpixel(
        (0, 0)) == (50, 50, 50, 10)
    assert to_display(Image.new('L', (2, 2)), grey=True).mode == 'L'


def test_neighbour_grid_tile(grey16):
    from tsneviz.analysis.neighbors import _load_tile
    tile = _load_tile(grey16)
    assert tile.dtype == np.uint8 and tuple(tile[5, 20]) == (128, 128, 128)


def test_explorer_thumbnail(grey16, tmp_path):
    from tsneviz.explorer import write_thumbnails
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    ids = write_thumbnails(str(run_dir), [grey16], size=24)
    assert ids.tolist() == [0]
    # the first cell of the first sheet
    with Image.open(run_dir / 'thumbs' / 'sheet_0.png') as sheet:
        assert sheet.convert('L').getpixel((20, 5)) == 128


def test_projector_sprite(grey16, tmp_path):
    import os

    from tsneviz.exporters.projector import write_sprite
    from tsneviz.rundir.thumbs import pack_thumbnails
    packed = pack_thumbnails(str(tmp_path), [grey16], size=24)
    os.remove(grey16)  # the sprite is made from the packed thumbnail
    path = str(tmp_path / 'sprite.png')
    write_sprite(path, packed, thumbnail_size=24)
    with Image.open(path) as sprite:
        assert sprite.convert('RGB').getpixel((20, 5)) == (128, 128, 128)


def test_server_thumbnail(grey16):
    from tsneviz.server.images import read_image
    data, media = read_image(grey16, 'thumb')
    assert media == 'image/png'
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.convert('RGB').getpixel((20, 5)) == (128, 128, 128)
