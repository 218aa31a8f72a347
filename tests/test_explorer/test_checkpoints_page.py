"""The checkpoint slider page in a real headless Chromium.

Three runs of the demo model after epochs 1, 2 and 3 on the same digits,
followed by ``compare_checkpoints``; the page is opened from ``file://``
and the slider is moved with the keyboard, as a user would, then the
points on the page must sit at the next checkpoint's map.
"""
import pathlib

import numpy as np
import pytest

from tests.test_checkpoints import N, make_checkpoint_runs
from tests.test_explorer.test_page import browser  # noqa: F401

READY = ("window.Bokeh && Bokeh.documents.length > 0 && "
         "Bokeh.documents[0].get_model_by_name('points') !== null")
POINTS = "Bokeh.documents[0].get_model_by_name('points').data"


@pytest.fixture(scope='module')
def followed(tmp_path_factory, digits_options):
    from tsneviz.compare import compare_checkpoints
    root = tmp_path_factory.mktemp('slider')
    runs = make_checkpoint_runs(root / 'work', digits_options)
    return compare_checkpoints(runs, out_dir=str(root / 'out'))


def shown(page):
    data = page.evaluate(f'(() => {{ const d = {POINTS}; return '
                         '[Array.from(d.x), Array.from(d.y)]; })()')
    return np.array(data, dtype=np.float64).T


def test_slider_moves_points_to_the_next_checkpoint(followed,
                                                    browser):  # noqa: F811
    coords = np.load(followed['files']['coords']).astype(np.float64)
    page = browser.new_page(viewport=dict(width=1000, height=900))
    failed = []
    page.on('requestfailed', lambda r: failed.append(r.url))
    errors = []
    page.on('pageerror', lambda e: errors.append(str(e)))
    try:
        page.goto(pathlib.Path(followed['files']['html']).as_uri())
        page.wait_for_function(READY, timeout=30000)
        assert page.evaluate(f'{POINTS}.x.length') == N
        np.testing.assert_allclose(shown(page), coords[0], atol=1e-4)
        assert page.evaluate(
            "Bokeh.documents[0].get_model_by_name('checkpoint').value") == 1

        handle = page.locator('.noUi-handle').first
        handle.focus()
        page.keyboard.press('ArrowRight')
        page.wait_for_function(
            "Bokeh.documents[0].get_model_by_name('checkpoint').value === 2")
        np.testing.assert_allclose(shown(page), coords[1], atol=1e-4)
        assert not np.allclose(coords[1], coords[0], atol=1e-3)
        title = page.evaluate(
            "Bokeh.documents[0].get_model_by_name('map').title.text")
        assert title.startswith('2/3: epoch_2.pth')

        page.keyboard.press('ArrowRight')
        page.wait_for_function(
            "Bokeh.documents[0].get_model_by_name('checkpoint').value === 3")
        np.testing.assert_allclose(shown(page), coords[2], atol=1e-4)
        conf = page.evaluate(f'Array.from({POINTS}.confidence)')
        assert len(conf) == N and all(0 <= c <= 1 for c in conf)
    finally:
        page.close()
    assert not errors, errors
    # offline: nothing but the page itself and the local digit images
    assert all(url.startswith('file://') for url in failed), failed
