"""Reduction step: features (N, C) to coordinates (N, 2 or 3)."""
from .tsne import BACKENDS, BaseTSNE, OpenTSNE, SklearnTSNE, build_tsne

__all__ = ['BACKENDS', 'BaseTSNE', 'OpenTSNE', 'SklearnTSNE', 'build_tsne']
