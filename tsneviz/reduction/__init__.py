"""Reduction step: features (N, C) to coordinates (N, 2 or 3).

Every layout method is an entry of :data:`tsneviz.registry.REDUCERS` under
its ``--method`` name (``tsne``, ``umap``, ``pca``); t-SNE's
implementations are entries of ``TSNE_BACKENDS`` (``--backend``). umap-learn
is imported only when a UMAP layout is fitted. What callers use of a
reducer is :class:`BaseReducer`'s protocol.
"""
from typing import Optional

import numpy as np

from .base import BaseReducer
from .fields import (
    LayoutField,
    add_layout_arguments,
    field,
    layout_fields,
    layout_keys,
    reducer_class,
    reducer_names,
)

# Imported in the order ``--method`` lists them: registration order.
from .tsne import TSNE, BaseTSNE, OpenTSNE, SklearnTSNE, build_tsne  # isort:skip  # noqa: E501
from .gpu import CumlTSNE, TorchdrTSNE, TsnecudaTSNE  # isort:skip
from .umap import UMAPReducer  # isort:skip
from .pca import PCAReducer  # isort:skip

__all__ = [
    'BaseReducer', 'BaseTSNE', 'CumlTSNE', 'LayoutField', 'OpenTSNE',
    'PCAReducer', 'TorchdrTSNE', 'TsnecudaTSNE',
    'add_layout_arguments',
    'SklearnTSNE', 'TSNE', 'UMAPReducer', 'build_reducer', 'build_tsne',
    'field', 'fit_layout', 'layout_fields', 'layout_keys', 'reducer_class',
    'reducer_names'
]


def build_reducer(method: str = 'tsne', **settings) -> BaseReducer:
    """Build the reducer of a ``--method`` from its settings.

    Args:
        method (str): A key of ``REDUCERS``: ``'tsne'``, ``'umap'``,
            ``'pca'`` or one registered later. Defaults to ``'tsne'``.
        **settings: Its parameters; for t-SNE ``backend`` too.

    Returns:
        BaseReducer: The validated, unfitted reducer.

    Examples:
        >>> build_reducer('umap', n_neighbors=10).describe()
        'UMAP · 10 neighbours'
    """
    return reducer_class(method).build(**settings)


def fit_layout(features: np.ndarray, reducer: BaseReducer,
               description: str = '', show_progress: bool = True,
               graph: Optional[dict] = None) -> np.ndarray:
    """Fit any reducer (t-SNE, UMAP, PCA, ...) with a progress bar.

    Args:
        features (np.ndarray): (N, C) features.
        reducer (BaseReducer): From :func:`build_reducer`.
        description (str): Bar label. Defaults to the reducer's name.
        show_progress (bool): Draw a bar. Defaults to True.
        graph (dict, optional): A shared neighbour graph of ``features``
            (see :meth:`BaseReducer.fit_transform`), handed on to a reducer
            that searches neighbours (:meth:`~BaseReducer.n_neighbors_for`
            above 0). Defaults to None.

    Returns:
        np.ndarray: (N, n_components) coordinates.

    Examples:
        >>> feats = np.random.rand(60, 8).astype(np.float32)
        >>> fit_layout(feats, build_reducer('pca'), show_progress=False).shape
        (60, 2)
    """
    from tsneviz.progress import progress_bar

    total = reducer.params.get('n_iter', 1)
    with progress_bar(description or reducer.name, total,
                      show_progress) as bar:

        def report(done, _total, kl):
            bar(completed=done,
                note='' if kl is None else f'KL {kl:.3f}')

        if graph is None or not reducer.n_neighbors_for(len(features)):
            # a reducer that searches no neighbours takes no graph
            return reducer.fit_transform(features, progress=report)
        return reducer.fit_transform(features, graph=graph, progress=report)
