"""Data step: dataset from the config, per-class sampling, sharded loader.

The names below are imported on first use: ``tsneviz.data.loader`` needs
torch, and the light modules of this package (``paths``, ``display``) are
also used where torch is not (a run of plain features, the thumbnail
workers), which should not pay for importing it.
"""
import importlib

_MODULES = {
    'SampleSubset': 'loader', 'UnreadableSampleError': 'loader',
    'build_dataset': 'loader', 'build_loader': 'loader',
    'dataset_classes': 'loader', 'dataset_labels': 'loader',
    'image_paths': 'loader', 'Sample': 'sample', 'image_prefix': 'sample',
    'sample_dataset': 'sample', 'SAMPLING_MODES': 'sampling',
    'resolve_class_idx': 'sampling', 'sample_per_class': 'sampling'
}

__all__ = sorted(_MODULES)


def __getattr__(name):
    if name in _MODULES:
        module = importlib.import_module(f'{__name__}.{_MODULES[name]}')
        return getattr(module, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
