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
from tsneviz.pipeline import RunOptions, run_features, run_module, run_vis_tsne
from tsneviz.reduction import build_reducer, fit_layout

__all__ = [
    'compare_checkpoints',
    'Sample', 'build_model', 'sample_dataset', 'extract_features',
    'build_reducer', 'fit_layout', 'RunOptions', 'run_vis_tsne',
    'run_features', 'run_module', 'analyze_run', 'cluster_run',
    'compute_neighbors', 'query', 'find_label_issues',
    'measure_reliability', 'write_report',
    'compare_runs', 'make_splits', 'export_selection', 'export_run',
    'place_images', 'place_features'
]

# The model steps and the tools' functions are re-exported too, but imported
# on first use: they pull in torch, plotting, HTML and export libraries
# that a run of plain features, or a tool, does not need up front.
_LAZY = {'Sample': 'tsneviz.data',
         'sample_dataset': 'tsneviz.data',
         'extract_features': 'tsneviz.extraction',
         'build_model': 'tsneviz.model',
         'cluster_run': 'tsneviz.analysis.runs',
         'compute_neighbors': 'tsneviz.analysis.neighbors',
         'query': 'tsneviz.analysis.neighbors',
         'find_label_issues': 'tsneviz.analysis.label_issues',
         'measure_reliability': 'tsneviz.analysis.reliability',
         'write_report': 'tsneviz.report',
         'compare_runs': 'tsneviz.compare',
         'compare_checkpoints': 'tsneviz.compare',
         'make_splits': 'tsneviz.exporters.splits',
         'export_selection': 'tsneviz.exporters.selection',
         'export_run': 'tsneviz.exporters.base',
         'place_images': 'tsneviz.analysis.placement',
         'place_features': 'tsneviz.analysis.placement'}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
