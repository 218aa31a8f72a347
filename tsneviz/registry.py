"""Registries of tsneviz, one per swappable step.

Each registry imports its modules lazily through ``locations``, so building
``dict(type='OpenTSNE')`` is all a caller needs; the module that defines the
class is imported on first use.
"""
from mmengine.registry import Registry

#######################################################################
#                            tsneviz.reduction                        #
#######################################################################

# Turn an (N, C) feature matrix into (N, 2) or (N, 3) coordinates.
REDUCERS = Registry('reducer', locations=['tsneviz.reduction'])

#######################################################################
#                            tsneviz.analysis                         #
#######################################################################

# Assign a cluster id to each sample of features or of an embedding.
CLUSTERERS = Registry('clusterer', locations=['tsneviz.analysis'])

#######################################################################
#                            tsneviz.exporters                        #
#######################################################################

# Write a run (or a selection of it) in another tool's format.
EXPORTERS = Registry('exporter', locations=['tsneviz.exporters'])
