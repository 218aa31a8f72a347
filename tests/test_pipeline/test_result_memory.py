"""A run's features are read from its own file during the layout."""
import os.path as osp

import numpy as np

from tsneviz.pipeline.result import RunResult


def features_maps(path):
    """The process's memory maps of ``path``."""
    with open('/proc/self/maps') as f:
        return [line for line in f if line.rstrip().endswith(path)]


def test_features_are_mapped_from_the_run_and_remapped_empty(tmp_path):
    X = np.random.default_rng(0).normal(size=(2000, 64)).astype(np.float32)
    result = RunResult(features={'feat_0': X.copy()}, table={},
                       labels=np.zeros(2000, int), space=None, stage='x',
                       sections={})
    result.map_features(str(tmp_path))
    path = osp.join(str(tmp_path), 'feat_0.npy')
    mapped = result.features['feat_0']
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    assert osp.samefile(mapped.filename, path)
    np.testing.assert_array_equal(mapped, X)
    assert len(features_maps(path)) == 1
    del mapped
    # a remap replaces the map: the old one and the pages it read go
    result.remap('feat_0')
    assert len(features_maps(path)) == 1
    result.release()
    assert result.features == {} and features_maps(path) == []
