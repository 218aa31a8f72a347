"""Pipeline step: one run, from its input to a complete run directory.

Three entry points share one lifecycle (:func:`~.lifecycle.open_run`: the
run directory and its log) and one writer (:func:`~.result.write_run`:
every file a view of one :class:`~.result.RunResult`, ``run.json`` last):

- :func:`run_vis_tsne`: an mmpretrain config and checkpoint
  (:mod:`.vis_tsne`);
- :func:`run_features`: a plain feature matrix (:mod:`.plain`);
- :func:`run_module`: any PyTorch model and dataset (:mod:`.plain`).
"""
from .lifecycle import Timer, layout_reducer, open_run
from .options import ExtractOptions, RunOptions, SampleOptions
from .plain import run_features, run_module
from .result import RunResult, finish_run, fit_layouts, write_run
from .vis_tsne import run_vis_tsne

__all__ = [
    'ExtractOptions', 'RunOptions', 'RunResult', 'SampleOptions', 'Timer',
    'finish_run', 'fit_layouts', 'layout_reducer', 'open_run',
    'run_features', 'run_module', 'run_vis_tsne', 'write_run'
]
