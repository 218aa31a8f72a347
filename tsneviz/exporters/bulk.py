"""Bulk CSV export of a run: label images by lasso in ``python -m bulk image``.

`Bulk <https://github.com/koaning/bulk>`_ reads a CSV with ``path``, ``x``,
``y`` and an optional ``color`` column; every other column rides along and
comes back in the CSV of a saved selection. Columns written here:

========== ===============================================================
path       absolute image path (Bulk shows the image itself)
x, y       the run's t-SNE coordinates of ``key``
color      what the points are coloured by (``color`` option: label,
           prediction, cluster, correct (correct/wrong), loss, score)
label      ground-truth class name
gt_label   ground-truth class index
prediction predicted class name, of the model's classes (runs with
           predictions)
correct    ``true`` / ``false``     (predictions of the dataset's classes,
                                     see :mod:`tsneviz.labels`)
score      softmax score of the prediction, ``entropy``, ``loss`` (the
           latter with predictions of the dataset's classes)
cluster    cluster id               (runs with clusters)
index      the sample's index in the dataset
========== ===============================================================

Bulk (0.4.2) colours a text ``color`` with a categorical palette of at most
10 values and a numeric one with a continuous palette; pandas reads a column
of digits as numbers, so categorical values that all look like numbers are
written with a prefix (``class 3``, ``cluster 2``) to stay categories.
"""
import os.path as osp
from typing import Dict, List, Optional

from mmengine.logging import MMLogger

from tsneviz.errors import UserError
from tsneviz.exporters.base import BaseExporter, coords_of, sample_metadata
from tsneviz.params import Options
from tsneviz.registry import EXPORTERS
from tsneviz.rundir import Run, bulk_file, write_table

# --color NAME -> (metadata column, prefix for numeric-looking categories);
# 'loss' and 'score' are numbers on purpose (a continuous palette).
COLORS = {
    'label': ('label', 'class '),
    'prediction': ('prediction', 'pred '),
    'cluster': ('cluster', 'cluster '),
    'correct': ('correct', ''),
    'loss': ('loss', None),
    'score': ('score', None),
    'none': (None, None),
}
# bulk._bokeh_utils.get_color_mapping picks Category10[n]: 3 to 10 colours
# (2 values get a third, unused one; 1 value has no palette).
MAX_CATEGORIES = 10


@EXPORTERS.register_module(name='bulk')
class BulkExporter(BaseExporter):
    """Write a run as a CSV for ``python -m bulk image``.

    Args:
        color (str): What ``color`` holds: ``'label'`` (ground-truth class),
            ``'prediction'``, ``'cluster'``, ``'correct'``, ``'loss'`` or
            ``'score'`` (continuous), or ``'none'`` (no colour). Defaults
            to ``'label'``.

    Examples:
        >>> BulkExporter(color='cluster').export(
        ...     'work_dirs/digits/tsne_20261123_144017')
        ['/.../tsne_20261123_144017/bulk_feat_3.csv']
    """

    name = 'bulk'
    constraints = {'color': [Options(list(COLORS))]}
    defaults = dict(color='label')

    def default_out(self, run: Run, key: Optional[str]) -> str:
        return osp.join(run.path, bulk_file(run.key(key)))

    def write(self, run: Run, out: str, key: Optional[str]) -> List[str]:
        key = run.key(key)
        coords = coords_of(run, key)
        if coords.shape[1] != 2:
            raise UserError(f'bulk draws 2-D maps, but {key} of {run.path} '
                            f'has {coords.shape[1]}-D coordinates; run '
                            't-SNE again with --n-components 2')
        meta = sample_metadata(run)
        path = meta.pop('path')
        columns = {'path': [osp.abspath(p) for p in path],
                   'x': coords[:, 0].astype(float),
                   'y': coords[:, 1].astype(float)}
        color = color_column(meta, self.options['color'])
        if color is not None:
            columns['color'] = color
        columns.update(meta)
        return [write_table(out, columns)]


def export_bulk(run_dir: str, out: Optional[str] = None,
                key: Optional[str] = None, **options) -> List[str]:
    """Export a run as a Bulk image CSV (``python -m bulk image OUT``).

    Args:
        run_dir (str): A complete run directory.
        out (str, optional): The CSV to write. Defaults to
            ``<run_dir>/bulk_<key>.csv``.
        key (str, optional): Feature key whose t-SNE map is ``x, y``.
            Defaults to None (the run's first key).
        **options: See :class:`BulkExporter` (``color``).

    Returns:
        list[str]: The CSV path.

    Examples:
        >>> export_bulk('work_dirs/digits/tsne_20261123_144017',
        ...             color='prediction')
        ['/.../tsne_20261123_144017/bulk_feat_3.csv']
    """
    return BulkExporter(**options).export(run_dir, out, key)


def color_column(meta: Dict[str, List[str]], color: str) -> Optional[list]:
    """The ``color`` values for ``--color color``, or None for no colour.

    Raises:
        UserError: When the run lacks the column (no predictions, no
            clusters), or when Bulk could not colour that many categories.
    """
    column, prefix = COLORS[color]
    if column is None:
        return None
    if column not in meta:
        what = {'cluster': 'clusters (run tools/cluster.py first)'}.get(
            column, 'predictions (the model has no classification head)')
        if column in ('correct', 'loss') and 'prediction' in meta:
            what = (f'{column} values: the model\'s classes are not the '
                    'dataset\'s (see label_space in run.json)')
        raise UserError(f'cannot colour by {color}: the run has no {what}; '
                        'choose another --color')
    values = meta[column]
    if prefix is None:  # continuous: numbers, empty cells stay empty (NaN)
        return [float(v) if v != '' else float('nan') for v in values]
    if column == 'correct':
        # pandas would read true/false as booleans, which Bulk cannot colour.
        values = ['correct' if v == 'true' else 'wrong' for v in values]
    distinct = sorted(set(values) - {''})
    if len(distinct) > MAX_CATEGORIES:
        raise UserError(f'bulk colours at most {MAX_CATEGORIES} categories, '
                        f'but {color} has {len(distinct)}; choose --color '
                        'correct, loss or none, or fewer classes '
                        '(--class-idx / --max-num-class)')
    if len(distinct) < 2:
        # Bulk has no palette for one category, and one colour says nothing.
        MMLogger.get_current_instance().warning(
            'bulk: every sample has %s %r; writing no color column',
            color, distinct[0] if distinct else '')
        return None
    if prefix and all(_is_number(v) for v in distinct):
        return [prefix + v if v else v for v in values]
    return list(values)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
