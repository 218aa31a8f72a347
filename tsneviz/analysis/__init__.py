"""Analysis step: clusters, neighbours, summaries of a run."""
from . import clustering  # noqa: F401  (registers the CLUSTERERS)
from .neighbors import compute_neighbors, query
from .runs import cluster_run

__all__ = ['cluster_run', 'compute_neighbors', 'query']
