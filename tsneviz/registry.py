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
