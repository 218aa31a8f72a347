"""Runs of the same samples, side by side.

- :func:`compare_runs` (:mod:`~tsneviz.compare.pair`): two runs, e.g.
  pretrained vs fine-tuned: one plot in one frame and a metrics table with
  the better run marked per row.
- :func:`compare_checkpoints` (:mod:`~tsneviz.compare.checkpoints`): runs
  made from checkpoints along one training run: every map drawn from one
  start layout, an animation and a slider page across checkpoints,
  per-sample movement, the neighbourhoods that changed most, and dataset
  cartography (:mod:`~tsneviz.compare.cartography`).

Both rest on :mod:`~tsneviz.compare.align`: pairing the samples of two
runs and bringing maps into one frame.
"""
from tsneviz.compare.align import (
    disparity,
    match_samples,
    procrustes_align,
    tsne_from_init,
)
from tsneviz.compare.checkpoints import compare_checkpoints
from tsneviz.compare.pair import (
    ALIGN_MODES,
    METRICS,
    compare_runs,
    render_markdown,
)

__all__ = ['ALIGN_MODES', 'METRICS', 'compare_runs', 'compare_checkpoints',
           'disparity', 'match_samples', 'procrustes_align',
           'render_markdown', 'tsne_from_init']
