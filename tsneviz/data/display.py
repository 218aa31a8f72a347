"""Images as people should see them: 8-bit, high bit depths rescaled.

Pillow's ``convert('RGB')`` of a 16-bit (``I;16``), 32-bit (``I``) or float
(``F``) image clips every value above 255, so a mid-grey 16-bit PNG
(32768) shows white. Thumbnails, neighbour grids and sprites all open
their images through :func:`open_for_display` (or :func:`to_display` for
an image already open) so they rescale instead.
"""
import numpy as np

__all__ = ['to_display', 'open_for_display']

_TRANSPARENT = ('RGBA', 'LA', 'PA', 'RGBa', 'La')


def _rescaled(img):
    """A single-channel high-bit-depth image as 8-bit ``L``."""
    from PIL import Image

    values = np.asarray(img)
    if img.mode.startswith('I;16'):
        # the type's range: 0..65535 -> 0..255
        out = values.astype(np.uint16) >> 8
    elif img.mode == 'I':
        # 16-bit PNGs open as I in some Pillow versions: values of 0..255
        # are 8-bit data, of 0..65535 16-bit data; anything else is
        # stretched between its extremes
        lo, hi = int(values.min()), int(values.max())
        if lo >= 0 and hi <= 255:
            out = values
        elif lo >= 0 and hi <= 65535:
            out = values >> 8
        else:
            out = (values - lo) * (255.0 / max(hi - lo, 1))
    else:  # F
        values = np.nan_to_num(values.astype(np.float64))
        lo, hi = float(values.min()), float(values.max())
        if lo >= 0 and hi <= 1:
            out = values * 255.0  # the usual range of float images
        elif hi > lo:
            out = (values - lo) * (255.0 / (hi - lo))
        else:
            out = np.clip(values, 0, 255)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8),
                           'L')


def to_display(img, grey: bool = False):
    """An open PIL image as 8-bit RGB, or RGBA where it has transparency.

    16-bit images are scaled by their type's range (``value >> 8``), 32-bit
    integer images likewise when their values fit in 16 bits, float images
    in 0..1 by 255 and others by their minimum and maximum.

    Args:
        img (PIL.Image.Image): The image.
        grey (bool): Return single-channel images as ``L`` (smaller PNG
            thumbnails) instead of RGB. Defaults to False.

    Returns:
        PIL.Image.Image: Mode ``RGB``, ``RGBA`` (or ``L`` with ``grey``).

    Examples:
        >>> to_display(Image.new('I;16', (4, 4), 32768)).getpixel((0, 0))
        (128, 128, 128)
    """
    if img.mode.startswith('I') or img.mode == 'F':
        img = _rescaled(img)
    if img.mode in _TRANSPARENT or (img.mode == 'P' and
                                    'transparency' in img.info):
        return img.convert('RGBA')
    if grey and img.mode in ('1', 'L'):
        return img.convert('L')
    return img.convert('RGB')


def open_for_display(path: str):
    """Read an image file for display (see :func:`to_display`).

    Raises:
        OSError: The file is missing or is not an image Pillow reads.

    Examples:
        >>> open_for_display('data/digits/val/0/10.png').mode
        'RGB'
    """
    from PIL import Image

    with Image.open(path) as img:
        return to_display(img)
