"""Exporters: a run in the formats of other tools."""
from .base import export_run, formats
from .bulk import export_bulk
from .projector import export_projector
from .selection import export_selection, read_indices
from .splits import make_splits
from .table import export_csv, export_parquet

__all__ = ['export_run', 'formats', 'export_bulk', 'export_projector',
           'export_csv', 'export_parquet', 'export_selection',
           'read_indices', 'make_splits']
