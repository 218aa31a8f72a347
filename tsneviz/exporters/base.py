"""What every exporter shares: options, output paths and the manifest entry.

An exporter reads a complete run directory (never in-memory state), writes
its files atomically, and then records itself in ``run.json`` under
``exports`` with :func:`~tsneviz.rundir.update_manifest`, which keeps
``run.json`` the last file written.
"""
import datetime
import importlib
import os
import os.path as osp
from typing import Callable, Dict, List, Optional

import numpy as np

from tsneviz.errors import UserError
from tsneviz.params import validate_params
from tsneviz.registry import EXPORTERS
from tsneviz.rundir import (TABLE, Run, read_manifest, read_table,
                            update_manifest)

# Text columns of samples.csv: kept as text even when every value looks like
# a number (the digits' class names are '0'..'9').
TEXT_COLUMNS = ('img_path', 'gt_class', 'pred_class')


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


# The run exporters by format name: a function
# ``(run_dir, out=None, key=None, **options) -> list[str]`` each, also in
# EXPORTERS (which holds other exporters with other signatures too).
RUN_EXPORTERS: Dict[str, Callable[..., List[str]]] = {}
# Modules that define them; imported on first use of export_run.
RUN_EXPORTER_MODULES = ('tsneviz.exporters.projector',
                        'tsneviz.exporters.bulk', 'tsneviz.exporters.table')


def run_exporter(name: str):
    """Register a run export function as ``name`` (and in EXPORTERS)."""
    def register(func):
        RUN_EXPORTERS[name] = func
        return EXPORTERS.register_module(name=name, module=func)
    return register


def formats() -> List[str]:
    """Names of the run export formats, sorted."""
    for module in RUN_EXPORTER_MODULES:
        importlib.import_module(module)
    return sorted(RUN_EXPORTERS)


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
    valid = formats()
    if format not in valid:
        raise UserError(f'unknown export format {format!r}; choose one of '
                        f'{", ".join(valid)}')
    return RUN_EXPORTERS[format](run_dir, out, key, **options)


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
    # The text of samples.csv, not Run.table: class names such as '0'..'9'
    # must stay names, not become the numbers 0.0..9.0.
    table = read_table(osp.join(run.path, TABLE))
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
    if 'cluster' in table:
        cols['cluster'] = table['cluster']
    cols['index'] = table['index']
    cols['path'] = table['img_path']
    return {name: list(values) for name, values in cols.items()}


def _short(text: str) -> str:
    """A float of the table with 6 significant digits; empty stays empty."""
    return f'{float(text):.6g}' if text != '' else ''


def coords_of(run: Run, key: str) -> np.ndarray:
    """The run's embedding of ``key``: ``tsne_<key>.npy``, else the table."""
    try:
        return run.coords(key)
    except FileNotFoundError:
        axes = [a for a in 'xyz' if f'{key}_{a}' in run.table]
        if not axes:
            raise UserError(f'{run.path} has no embedding of {key!r}; run '
                            'the reduction step again') from None
        return np.stack([run.table[f'{key}_{a}'] for a in axes], axis=1)
