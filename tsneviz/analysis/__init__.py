"""Analysis step: clusters, neighbours, label issues, summaries of a run."""
from . import clustering  # noqa: F401  (registers the CLUSTERERS)
from .label_issues import find_label_issues
from .neighbors import compute_neighbors, query
from .runs import cluster_run

__all__ = ['cluster_run', 'compute_neighbors', 'find_label_issues',
           'query']
