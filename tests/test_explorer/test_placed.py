"""Placed layers in the explorer, in a real headless Chromium.

A real demo run with a few train images placed on it (tools/place.py's
function); the page is opened from ``file://`` and the layer's checkbox is
clicked with a real mouse. Whether the stars are drawn is read from the
pixels of the plot's frame: the placed layer is the only near-black fill
on the map (the class colours are tab10's).
"""
import io
import os
import os.path as osp

import numpy as np
import pytest

from tests.conftest import make_demo_run
from tests.test_explorer.test_page import (
    CHROMIUM_ARGS,
    VIEWPORT,
    ensure_chromium,
)

PER_CLASS = 3


@pytest.fixture(scope='module')
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('the playwright package is missing: pip install -r '
                    'requirements/tests.txt')
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=ensure_chromium(),
                                      args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope='module')
def placed_run(tmp_path_factory, digits_root, digits_options):
    from tsneviz.apis import place_images
    from tsneviz.explorer import write_explorer

    tmp = tmp_path_factory.mktemp('placed_explorer')
    run_dir = make_demo_run(tmp / 'work', digits_options,
                            max_num_samples=15,
                            tsne=dict(perplexity=10.0, n_iter=300))
    listed = []
    for label in range(10):
        folder = osp.join(digits_root, 'train', str(label))
        listed += [osp.join(folder, n)
                   for n in sorted(os.listdir(folder))[:PER_CLASS]]
    image_list = tmp / 'new.txt'
    image_list.write_text('\n'.join(listed) + '\n')
    place_images(run_dir, str(image_list), name='new',
                 labels=[int(osp.basename(osp.dirname(p))) for p in listed])
    return run_dir, write_explorer(run_dir)


def _dark_pixels(page) -> int:
    """Near-black pixels inside the plot's frame (the placed stars)."""
    from PIL import Image

    frame = page.evaluate('tsneviz.frameRect()')
    shot = page.screenshot(clip=dict(x=frame['left'] + 2,
                                     y=frame['top'] + 2,
                                     width=frame['width'] - 4,
                                     height=frame['height'] - 4))
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert('RGB'))
    return int((pixels.max(axis=2) < 40).sum())


def test_placed_layer_toggle(browser, placed_run):
    run_dir, page_path = placed_run
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors = []
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto('file://' + page_path)
    page.wait_for_function('window.tsneviz && window.tsneviz.ready',
                           timeout=60_000)
    # the layer's own renderer, with all its points
    assert page.evaluate('tsneviz.placed.length') == 1
    assert page.evaluate('tsneviz.placed[0].name') == 'new'
    assert page.evaluate(
        'tsneviz.placed[0].renderer.data_source.data.x.length') == \
        10 * PER_CLASS
    toggle = page.locator('#placed-toggle-0')
    assert toggle.is_visible() and toggle.is_checked()
    assert 'new' in page.locator('#tsneviz-placed').inner_text()
    shown = _dark_pixels(page)
    assert shown > 10 * PER_CLASS * 5, shown  # stars of ~12 px are drawn

    toggle.click()
    page.wait_for_function('!tsneviz.placed[0].renderer.visible')
    page.wait_for_timeout(300)  # the next frame
    assert _dark_pixels(page) == 0
    # the map itself is still drawn
    assert page.evaluate('tsneviz.points.visible') is True

    toggle.click()
    page.wait_for_function('tsneviz.placed[0].renderer.visible')
    page.wait_for_timeout(300)
    assert _dark_pixels(page) == shown
    assert not errors, errors
    context.close()


def test_page_without_placed_layers(browser, placed_run, tmp_path):
    """A run without layers has no control and no extra renderer."""
    from tsneviz.explorer import write_explorer
    from tsneviz.rundir import read_manifest, write_json

    run_dir, _ = placed_run
    manifest = read_manifest(run_dir)
    layers = manifest.pop('placed')
    write_json(osp.join(run_dir, 'run.json'), manifest)
    try:
        page_path = write_explorer(run_dir)
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto('file://' + page_path)
        page.wait_for_function('window.tsneviz && window.tsneviz.ready',
                               timeout=60_000)
        assert page.evaluate('tsneviz.placed.length') == 0
        assert page.locator('#tsneviz-placed').is_hidden()
        assert _dark_pixels(page) == 0
        context.close()
    finally:
        manifest['placed'] = layers
        write_json(osp.join(run_dir, 'run.json'), manifest)
        write_explorer(run_dir)
