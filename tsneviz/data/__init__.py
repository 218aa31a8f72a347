"""Data step: dataset from the config, per-class sampling, sharded loader."""
from .loader import (SampleSubset, UnreadableSampleError, build_dataset,
                     build_loader, dataset_classes, dataset_labels,
                     image_paths)
from .sample import Sample, image_prefix, sample_dataset
from .sampling import SAMPLING_MODES, resolve_class_idx, sample_per_class

__all__ = [
    'SAMPLING_MODES', 'Sample', 'SampleSubset', 'UnreadableSampleError',
    'build_dataset', 'build_loader', 'dataset_classes', 'dataset_labels',
    'image_paths', 'image_prefix', 'resolve_class_idx', 'sample_dataset',
    'sample_per_class'
]
