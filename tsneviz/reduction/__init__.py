"""Reduction step: features (N, C) to coordinates (N, 2 or 3).

t-SNE (openTSNE or scikit-learn), UMAP and PCA, all in ``REDUCERS``.
umap-learn is imported only when a UMAP layout is fitted.
"""
from .base import BaseReducer
from .pca import PCAReducer
from .tsne import BACKENDS, BaseTSNE, OpenTSNE, SklearnTSNE, build_tsne
from .umap import UMAPReducer

__all__ = [
    'BACKENDS', 'BaseReducer', 'BaseTSNE', 'OpenTSNE', 'PCAReducer',
    'SklearnTSNE', 'UMAPReducer', 'build_tsne'
]
