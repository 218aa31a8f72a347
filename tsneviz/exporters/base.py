"""What every exporter shares: options, output paths and the manifest entry.

An exporter reads a complete run directory (never in-memory state), writes
its files atomically, and then records itself in ``run.json`` under
``exports`` with :func:`~tsneviz.rundir.update_manifest`, which keeps
``run.json`` the last file written.

Every run export format is a :class:`BaseExporter` subclass registered in
:data:`tsneviz.registry.EXPORTERS` under its format name; :func:`formats`,
:func:`export_run` and ``tools/export.py`` read the registry, so a new
format is one registered class.
"""
import datetime
import inspect
import os
import os.path as osp
from typing import Dict, List, Optional, Type

import numpy as np

from tsneviz.errors import UserError
from tsneviz.params import validate_params
from tsneviz.registry import EXPORTERS, registered
from tsneviz.rundir import (
    CLUSTER_COLUMN,
    COORD_AXES,
    Run,
    coord_column,
    coords_file,
    read_manifest,
    update_manifest,
)


class BaseExporter:
    """Validate options once; write a run; record the export in run.json.

    Subclasses set ``name``, ``constraints`` and ``defaults`` (the
    :func:`~tsneviz.params.validate_params` conventions) and implement
    :meth:`write`.

    Args:
        **options: Format-specific options; an unknown name or a bad value is
            a :class:`~tsneviz.errors.UserError` naming the valid ones.
    """

    name = ''
    constraints: dict = {}
    defaults: dict = {}
    # Boolean options (the constraint types of tsneviz.params take no bool).
    flags: tuple = ()

    def __init__(self, **options):
        for name in self.flags:
            if name in options and not isinstance(options[name], bool):
                raise UserError(f'{self.name}: {name}={options[name]!r} is '
                                'invalid; it must be True or False')
        validate_params({k: v for k, v in options.items()
                         if k not in self.flags},
                        {**self.constraints,
                         **{k: [] for k in self.flags}}, self.name)
        self.options = {**self.defaults, **options}

    def default_out(self, run: Run, key: Optional[str]) -> str:
        """Where the export goes when ``out`` is not given."""
        raise NotImplementedError

    def write(self, run: Run, out: str, key: Optional[str]) -> List[str]:
        """Write the files of this format; return their paths."""
        raise NotImplementedError

    def export(self, run_dir: str, out: Optional[str] = None,
               key: Optional[str] = None) -> List[str]:
        """Export ``run_dir``; ``run.json`` is updated last.

        Args:
            run_dir (str): A complete run directory.
            out (str, optional): Output file or folder (see each format).
                Defaults to a path inside ``run_dir``.
            key (str, optional): Feature key, e.g. ``'feat_3'``. Defaults to
                None (each format says what it does then).

        Returns:
            list[str]: Absolute paths of the files written.
        """
        run = Run(run_dir)
        if key is not None:
            run.key(key)  # a clear error for a key the run does not have
        out = osp.abspath(out or self.default_out(run, key))
        paths = [osp.abspath(p) for p in self.write(run, out, key)]
        record_export(run_dir, self.name, out, key, self.options, paths)
        return paths


def record_export(run_dir: str, fmt: str, out: str, key: Optional[str],
                  options: dict, paths: List[str]) -> dict:
    """Add ``exports[fmt]`` to run.json and list the files inside the run.

    Files written outside the run directory are named (absolute) in the
    export entry only: ``outputs`` lists what the run directory holds.
    """
    root = osp.realpath(run_dir)

    def relative(path):
        real = osp.realpath(path)
        if real.startswith(root + os.sep):
            return osp.relpath(real, root), True
        return osp.abspath(path), False

    exports = dict(read_manifest(run_dir).get('exports') or {})
    exports[fmt] = {
        'out': relative(out)[0],
        'key': key,
        'options': options,
        'files': [relative(p)[0] for p in paths],
        'created': datetime.datetime.now().isoformat(timespec='seconds'),
    }
    inside = [rel for rel, ok in map(relative, paths) if ok]
    return update_manifest(run_dir, {'exports': exports}, inside)


def _run_exporters() -> Dict[str, Type[BaseExporter]]:
    """The registered run exporters (classes) by format name."""
    return {name: cls for name, cls in registered(EXPORTERS).items()
            if inspect.isclass(cls) and issubclass(cls, BaseExporter)}


def formats() -> List[str]:
    """Names of the run export formats, sorted (from EXPORTERS).

    Examples:
        >>> formats()
        ['bulk', 'csv', 'parquet', 'projector']
    """
    return sorted(_run_exporters())


def exporter_class(format: str) -> Type[BaseExporter]:
    """The registered exporter class of ``format``.

    Raises:
        UserError: For a format that is not registered, listing those that
            are.
    """
    exporters = _run_exporters()
    if format not in exporters:
        raise UserError(f'unknown export format {format!r}; choose one of '
                        f'{", ".join(sorted(exporters))}')
    return exporters[format]


def format_options(format: str) -> List[str]:
    """The option names that ``format`` takes (its defaults' keys)."""
    return list(exporter_class(format).defaults)


def export_run(run_dir: str, format: str, out: Optional[str] = None,
               key: Optional[str] = None, **options) -> List[str]:
    """Export a run directory in another tool's format.

    Args:
        run_dir (str): A complete run directory (holding ``run.json``).
        format (str): ``'projector'`` (TensorBoard Embedding Projector),
            ``'bulk'`` (Bulk CSV), ``'parquet'`` or ``'csv'`` (the
            per-sample table).
        out (str, optional): Output file or folder. Defaults to a path
            inside ``run_dir`` chosen by the format.
        key (str, optional): Feature key, e.g. ``'feat_3'``. Defaults to
            None (the format's default: every key or the first one).
        **options: Options of the format, e.g. ``color='prediction'`` for
            ``'bulk'``.

    Returns:
        list[str]: Absolute paths of the files written.

    Examples:
        >>> export_run('work_dirs/digits/tsne_20261123_144017', 'bulk',
        ...            color='prediction')
        ['/.../tsne_20261123_144017/bulk_feat_3.csv']
    """
    exporter_class(format)  # an unknown format: a UserError listing them
    exporter = EXPORTERS.build(dict(type=format, **options))
    return exporter.export(run_dir, out, key)


def sample_metadata(run: Run) -> Dict[str, List[str]]:
    """Per-sample descriptive columns as text, shared by the exports.

    ``label`` (ground-truth class name), ``gt_label``, and, when the run has
    predictions, ``prediction`` (predicted class name), ``correct``
    (``'true'``/``'false'``, when the model's classes are the dataset's:
    see :mod:`tsneviz.labels`), ``score``, ``entropy`` and ``loss`` (6
    significant digits); then ``cluster`` when the run has clusters,
    ``index`` (the sample's index in the dataset) and ``path`` (the image
    file). Missing values are empty.
    """
    # The text of samples.csv, not Run.table: cells exactly as the run
    # wrote them ('3', not the number 3.0).
    table = run.text_table()
    cols: Dict[str, List[str]] = {'label': table['gt_class'],
                                  'gt_label': table['gt_label']}
    if 'pred_label' in table:
        cols['prediction'] = table['pred_class']
        # only where the model's classes are the dataset's (tsneviz.labels)
        correct = run.label_space.correct(
            [int(g) for g in table['gt_label']],
            [int(p) for p in table['pred_label']])
        if correct is not None:
            cols['correct'] = ['true' if c else 'false' for c in correct]
        for name in ('score', 'entropy', 'loss'):
            if name in table:
                cols[name] = [_short(v) for v in table[name]]
    if CLUSTER_COLUMN in table:
        cols['cluster'] = table[CLUSTER_COLUMN]
    cols['index'] = table['index']
    cols['path'] = table['img_path']
    return {name: list(values) for name, values in cols.items()}


def _short(text: str) -> str:
    """A float of the table with 6 significant digits; empty stays empty."""
    return f'{float(text):.6g}' if text != '' else ''


def coords_of(run: Run, key: str) -> np.ndarray:
    """The run's embedding of ``key``: ``tsne_<key>.npy``, else the table."""
    if run.has(coords_file(run.method, key)):
        return run.coords(key)
    # a run whose layout array was removed still has it in samples.csv
    columns = [coord_column(key, a) for a in COORD_AXES
               if coord_column(key, a) in run.table]
    if not columns:
        raise UserError(f'{run.path} has no embedding of {key!r}; run '
                        'the reduction step again')
    return np.stack([run.table[c] for c in columns], axis=1)
