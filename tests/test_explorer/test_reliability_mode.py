"""The explorer's ``reliability`` colour mode in a real headless Chromium.

The page is opened from ``file://``; the mode is chosen from the menu with
a real selection, and the colours are read from the rendered pixels.
"""
import io
import pathlib

import numpy as np
import pytest

from tests.conftest import make_features_run

# a fixture: the headless Chromium of the page tests
from tests.test_explorer.test_page import (
    VIEWPORT,
    _wait_ready,
    browser,  # noqa: F401
)


@pytest.fixture(scope='module')
def measured_run(tmp_path_factory, digits_root):
    from tsneviz.explorer import write_explorer

    run_dir = make_features_run(tmp_path_factory.mktemp('reliable') / 'w',
                                digits_root, analysis=('reliability',))
    return run_dir, write_explorer(run_dir)


def _viridis(value: float) -> np.ndarray:
    """The colour Bokeh's linear mapper over [0, 1] gives ``value``."""
    from bokeh.palettes import Viridis256

    color = Viridis256[min(int(value * 256), 255)]
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], float)


def test_reliability_mode_colours_points_by_the_column(browser,  # noqa
                                                       measured_run):
    from PIL import Image

    from tsneviz.rundir import Run

    run_dir, page_path = measured_run
    values = Run(run_dir).table['map_reliability']
    page = browser.new_page(viewport=VIEWPORT)
    errors = []
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto(pathlib.Path(page_path).as_uri())
    _wait_ready(page)
    assert page.locator('#color-by option[value="reliability"]').count() == 1
    assert not page.locator('#tsneviz-colorbar').is_visible()
    page.select_option('#color-by', 'reliability')
    assert page.locator('#tsneviz-colorbar').is_visible()
    labels = page.locator('#tsneviz-colorbar-labels').inner_text()
    assert 'neighbours kept' in labels
    assert page.evaluate('tsneviz.points.glyph.fill_color.field') == \
        'reliability'
    np.testing.assert_allclose(
        page.evaluate('Array.from(tsneviz.source.data.reliability)'),
        values, atol=1e-6)
    page.wait_for_timeout(500)  # the redraw
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert(
        'RGB'), float)
    screen = np.array(page.evaluate(
        f'Array.from({{length: {len(values)}}}, (_, i) => '
        'tsneviz.toScreen(i)).map(p => [p.x, p.y])'))
    gaps = np.linalg.norm(screen[:, None] - screen[None], axis=-1)
    np.fill_diagonal(gaps, np.inf)
    # points no other point overlaps, whose centre pixel is their own
    alone = np.flatnonzero(gaps.min(axis=1) > 12)
    low = alone[values[alone].argmin()]
    high = alone[values[alone].argmax()]
    assert values[low] < 0.5 < values[high]
    alpha = page.evaluate('tsneviz.points.glyph.fill_alpha.value')
    for point in (low, high):
        x, y = np.round(screen[point]).astype(int)
        drawn = shot[y, x]
        expected = alpha * _viridis(values[point]) + (1 - alpha) * 255
        assert np.abs(drawn - expected).max() < 20, (point, drawn, expected)
    # the least reliable of them is nearer the low end than the high end
    drawn_low = shot[tuple(np.round(screen[low]).astype(int)[::-1])]
    ends = [alpha * _viridis(v) + (1 - alpha) * 255 for v in (0.0, 1.0)]
    assert np.abs(drawn_low - ends[0]).sum() < \
        np.abs(drawn_low - ends[1]).sum()
    assert not errors


def test_no_reliability_mode_without_the_column(features_run):
    from tsneviz.explorer import data as point_data
    from tsneviz.explorer import page as explorer_page
    from tsneviz.rundir import Run

    run = Run(features_run)
    assert 'map_reliability' not in run.table
    data = point_data.columns(run, run.key(), np.zeros(len(run), np.int32))
    legend = point_data.legends(run, data, [])
    assert 'reliability' not in data
    plot = explorer_page.figure(data, legend, False)
    html = explorer_page.render('t', {}, dict(legends=legend, n=len(run)),
                                plot)
    assert 'value="reliability"' not in html
    assert 'value="loss"' in html
