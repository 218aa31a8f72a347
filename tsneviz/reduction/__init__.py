"""Reduction step: features (N, C) to coordinates (N, 2 or 3).

t-SNE (openTSNE or scikit-learn), UMAP and PCA, all in ``REDUCERS``.
umap-learn is imported only when a UMAP layout is fitted.
"""
from .base import BaseReducer
from .pca import PCAReducer
from .tsne import BACKENDS, BaseTSNE, OpenTSNE, SklearnTSNE, build_tsne
from .umap import UMAPReducer

__all__ = [
    'BACKENDS', 'BaseReducer', 'BaseTSNE', 'METHODS', 'OpenTSNE',
    'PCAReducer', 'SklearnTSNE', 'UMAPReducer', 'build_reducer', 'build_tsne'
]

METHODS = ('tsne', 'umap', 'pca')


def build_reducer(method: str = 'tsne', **settings) -> BaseReducer:
    """Build the reducer of a ``--method`` from its settings.

    Args:
        method (str): ``'tsne'``, ``'umap'`` or ``'pca'``. Defaults to
            ``'tsne'``.
        **settings: Its parameters; for t-SNE ``backend`` too.

    Returns:
        BaseReducer: The validated, unfitted reducer.

    Examples:
        >>> build_reducer('umap', n_neighbors=10).describe()
        'UMAP · 10 neighbours'
    """
    from tsneviz.errors import UserError
    from tsneviz.registry import REDUCERS
    if method == 'tsne':
        settings = dict(settings)
        return build_tsne(settings.pop('backend', 'opentsne'), **settings)
    types = {'umap': 'UMAP', 'pca': 'PCA'}
    if method not in types:
        raise UserError(f'unknown --method {method!r}; choose one of '
                        f'{", ".join(METHODS)}')
    return REDUCERS.build(dict(type=types[method], **settings))
