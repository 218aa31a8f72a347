"""Selections saved in a run directory: one file pair per selection.

Each selection is ``RUN/selections/<id>.csv`` (an ``index`` column of
DATASET indices plus ``img_path`` and ``gt_class``: the selection file
format of :mod:`tsneviz.exporters.selection`, so
``tools/export_selection.py RUN --indices RUN/selections/<id>.csv`` exports
it) and ``RUN/selections/<id>.json`` (name, label, note, indices, created),
written last: a selection is listed once its ``.json`` exists.

One new file per selection, with a unique id, written to a temporary name
and renamed, needs no lock: concurrent posts (from threads or from several
server processes) cannot overwrite each other, and a reader never sees a
half-written file. ``run.json`` is deliberately not updated: it is shared
with the CLI tools, which rewrite it without a lock, and a selection is a
person's note on the run, not an output of it.
"""
import json
import os
import os.path as osp
import time
import uuid
from typing import List

from tsneviz.rundir import Run, write_json, write_table

__all__ = ['FOLDER', 'save_selection', 'list_selections']

FOLDER = 'selections'


def save_selection(run: Run, name: str, indices: List[int],
                   label: str = None, note: str = None) -> dict:
    """Save a selection of a run's samples; return it as listed.

    Args:
        run (Run): The run.
        name (str): A name for people.
        indices (list[int]): DATASET indices (``index`` column); repeats
            are dropped, order kept.
        label (str, optional): Class name to give the samples on export.
        note (str, optional): Free text.

    Returns:
        dict: ``id``, ``name``, ``label``, ``indices``, ``note``,
        ``created`` and ``file`` (the CSV, relative to the run directory).

    Raises:
        UserError: An index that is not a sample of the run.

    Examples:
        >>> save_selection(Run(run_dir), 'odd sevens', [17, 42])['file']
        'selections/20261123T150348_1a2b3c4d.csv'
    """
    wanted = list(dict.fromkeys(int(i) for i in indices))
    rows = run.positions(wanted, hint='the index field of /points')
    folder = osp.join(run.path, FOLDER)
    os.makedirs(folder, exist_ok=True)
    now = time.time()
    # time first so that names sort by creation; uuid4 makes them unique
    selection_id = time.strftime('%Y%m%dT%H%M%S', time.localtime(now)) + \
        '_' + uuid.uuid4().hex[:12]
    csv_name = f'{FOLDER}/{selection_id}.csv'
    write_table(osp.join(run.path, csv_name), {
        'index': wanted,
        'img_path': [run.table['img_path'][r] for r in rows],
        'gt_class': [_class(run, r) for r in rows]})
    record = dict(id=selection_id, name=name, label=label, indices=wanted,
                  note=note,
                  created=time.strftime('%Y-%m-%dT%H:%M:%S%z',
                                        time.localtime(now)),
                  file=csv_name)
    write_json(osp.join(folder, f'{selection_id}.json'), record)
    return record


def _class(run: Run, row: int) -> str:
    label = int(run.labels[row])
    classes = run.classes
    if classes and 0 <= label < len(classes):
        return str(classes[label])
    return str(label)


def list_selections(run: Run) -> List[dict]:
    """The run's saved selections, oldest first.

    Examples:
        >>> [s['name'] for s in list_selections(Run(run_dir))]
        ['odd sevens']
    """
    folder = osp.join(run.path, FOLDER)
    if not osp.isdir(folder):
        return []
    records = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith('.json') or name.startswith('.'):
            continue
        try:
            with open(osp.join(folder, name), encoding='utf-8') as f:
                records.append(json.load(f))
        except (OSError, ValueError):
            continue  # not ours, or removed while listing
    return records
