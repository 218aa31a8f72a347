"""Registries of tsneviz, one per swappable step: the map of the package.

Each registry imports its modules lazily through ``locations``, so building
``dict(type='tsne')`` is all a caller needs; the module that defines the
entry is imported on first use. The key an entry is registered under is
the name users type (``--method umap``, ``--backend sklearn``, ``--analysis
views``): the CLI choices, the config keys and the server's models are read
from here, so adding an entry is all it takes to offer it.

Examples:
    >>> from tsneviz.registry import REDUCERS
    >>> sorted(REDUCERS.module_dict)  # after the locations are imported
    ['pca', 'tsne', 'umap']
"""
from mmengine.registry import Registry, build_from_cfg


def build_reducer_from_cfg(cfg: dict, registry: Registry,
                           default_args: dict = None):
    """mmengine's ``build_from_cfg``, through the entry's ``build``.

    A reducer class says what its settings build
    (``BaseReducer.build``): ``dict(type='tsne', backend='sklearn')``
    builds the scikit-learn backend, an instance of the registered t-SNE
    class.
    """
    cfg = dict(cfg)
    entry = registry.get(cfg['type']) if isinstance(cfg.get('type'), str) \
        else cfg.get('type')
    if hasattr(entry, 'build'):
        cfg['type'] = entry.build
    return build_from_cfg(cfg, registry, default_args)


#######################################################################
#                            tsneviz.reduction                        #
#######################################################################

# Turn an (N, C) feature matrix into (N, 2) or (N, 3) coordinates; the key
# is the ``--method`` name.
REDUCERS = Registry('reducer', build_func=build_reducer_from_cfg,
                    locations=['tsneviz.reduction'])
# The implementations of ``--method tsne``; the key is the ``--backend``
# name.
TSNE_BACKENDS = Registry('t-SNE backend',
                         locations=['tsneviz.reduction.tsne'])

#######################################################################
#                            tsneviz.analysis                         #
#######################################################################

# Assign a cluster id to each sample of features or of an embedding.
CLUSTERERS = Registry('clusterer', locations=['tsneviz.analysis'])
# Build a neighbour index of (N, C) features (``fn(features, metric)`` ->
# an object with scikit-learn's ``kneighbors``, optionally ``graph(k)``);
# the key names the search: ``exact`` (brute force), ``annoy``,
# ``pynndescent``, ``hnsw``. A run's shared graph picks one by size
# (``tsneviz.analysis.graphs.auto_builder``).
NEIGHBOR_GRAPHS = Registry('neighbor graph',
                           locations=['tsneviz.analysis.graphs'])
# What runs after a run is written (``--analysis``); the key is the step
# name, and each entry says its order and the tool that re-runs it.
ANALYSIS_STEPS = Registry('analysis step',
                          locations=['tsneviz.analysis.steps'])

#######################################################################
#                            tsneviz.exporters                        #
#######################################################################

# Write a run (or a selection of it) in another tool's format.
EXPORTERS = Registry('exporter', locations=['tsneviz.exporters'])


def registered(registry: Registry) -> dict:
    """The entries of ``registry`` by key, its locations imported first.

    Args:
        registry (Registry): One of the registries above.

    Returns:
        dict: ``{key: class or function}``, in registration order.

    Examples:
        >>> list(registered(TSNE_BACKENDS))
        ['opentsne', 'sklearn']
    """
    registry.import_from_location()
    return dict(registry.module_dict)
