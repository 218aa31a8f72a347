"""tsneviz.demo: the digits image folder."""
import os

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from tsneviz.demo import write_digits
from tsneviz.errors import UserError


def test_digits_folder_layout_and_pixels(digits_root):
    counts = {split: sum(len(files) for _, _, files in
                         os.walk(os.path.join(digits_root, split)))
              for split in ('train', 'val')}
    assert counts == {'train': 1257, 'val': 540}
    assert sorted(os.listdir(os.path.join(digits_root, 'val'))) == \
        [str(i) for i in range(10)]
    images = load_digits().images
    name = sorted(os.listdir(os.path.join(digits_root, 'val', '7')))[0]
    img = np.asarray(Image.open(os.path.join(digits_root, 'val', '7', name)))
    assert img.shape == (32, 32, 3)
    # the 32x32 image is the 8x8 digit upscaled: block means follow it
    original = images[int(name.split('.')[0])]
    blocks = img[..., 0].reshape(8, 4, 8, 4).mean(axis=(1, 3))
    assert np.corrcoef(blocks.ravel(), original.ravel())[0, 1] > 0.9


def test_second_call_is_a_no_op(digits_root):
    marker = os.path.join(digits_root, '.complete')
    before = os.stat(marker).st_mtime_ns
    assert write_digits(digits_root)['total'] == 1797
    assert os.stat(marker).st_mtime_ns == before


def test_bad_ratio_is_refused(tmp_path):
    with pytest.raises(UserError, match='val_ratio'):
        write_digits(tmp_path, val_ratio=1.5)
