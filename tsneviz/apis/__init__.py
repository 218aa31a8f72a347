"""Public functions of tsneviz: each step of a run, and the whole run.

This module only re-exports; each function lives in the module of its
step, and the package's folders follow the data flow::

    config -> model -> data -> extraction -> reduction -> pipeline (the run
    directory) -> analysis steps -> explorer, exporters, server

``tools/vis_tsne.py`` is a thin shell over :func:`run_vis_tsne`; the steps
are public so the same run can be done from a notebook.

Examples:
    >>> from tsneviz.apis import run_features
    >>> run_dir = run_features('embeddings.npy', method='pca')
"""
from tsneviz.analysis.steps import analyze_run
from tsneviz.data import Sample, sample_dataset
from tsneviz.extraction import extract_features
from tsneviz.model import build_model
from tsneviz.pipeline import (RunOptions, run_features, run_module,
                              run_vis_tsne)
from tsneviz.reduction import build_reducer, fit_layout

__all__ = [
    'compare_checkpoints',
    'Sample', 'build_model', 'sample_dataset', 'extract_features',
    'build_reducer', 'fit_layout', 'RunOptions', 'run_vis_tsne',
    'run_features', 'run_module', 'analyze_run', 'cluster_run',
    'compute_neighbors', 'query', 'find_label_issues', 'write_report',
    'compare_runs', 'make_splits', 'export_selection', 'export_run'
]

# The tools' functions are re-exported too, but imported on first use: they
# pull in plotting, HTML and export libraries a run does not need up front.
_LAZY = {'cluster_run': 'tsneviz.analysis.runs',
         'compute_neighbors': 'tsneviz.analysis.neighbors',
         'query': 'tsneviz.analysis.neighbors',
         'find_label_issues': 'tsneviz.analysis.label_issues',
         'write_report': 'tsneviz.report',
         'compare_runs': 'tsneviz.compare',
         'compare_checkpoints': 'tsneviz.compare',
         'make_splits': 'tsneviz.exporters.splits',
         'export_selection': 'tsneviz.exporters.selection',
         'export_run': 'tsneviz.exporters.base'}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
