"""Analysis step: clusters, neighbours, summaries of a run."""
