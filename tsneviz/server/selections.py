"""Selections saved in a run directory: one file pair per selection.

Each selection is ``RUN/selections/<id>.csv`` (an ``index`` column of
DATASET indices plus ``img_path`` and ``gt_class``: the selection file
format of :mod:`tsneviz.exporters.selection`, so
``tools/export_selection.py RUN --indices RUN/selections/<id>.csv`` exports
it) and ``RUN/selections/<id>.json`` (name, label, note, indices, created),
written last: a selection is listed once its ``.json`` exists, and only
while its ``.csv`` exists too.

One new file per selection, with a unique id, written to a temporary name
and renamed, means concurrent posts cannot overwrite each other and a
reader never sees a half-written file. A server killed mid-write leaves a
``.tmp_*`` file or a CSV without its JSON: never listed, and removed by
:func:`clean_selections` when a server starts. ``run.json`` is
deliberately not updated: it is shared with the CLI tools, which rewrite it
without a lock, and a selection is a person's note on the run, not an
output of it.

A run holds at most ``max_count`` selections taking at most ``max_bytes``
on disk (:class:`~tsneviz.server.errors.Conflict` beyond); the caller
serialises saves of one run so the count cannot be overshot.
"""
import json
import os
import os.path as osp
import re
import time
import uuid
from typing import List, Tuple

from tsneviz.rundir import (
    MAX_JSON_BYTES,
    Run,
    UnsafeFile,
    read_regular,
    write_json,
    write_table,
)
from tsneviz.server.errors import Conflict, Forbidden, NotFound
from tsneviz.server.security import real_folder

__all__ = ['FOLDER', 'MAX_COUNT', 'MAX_BYTES', 'save_selection',
           'list_selections', 'get_selection', 'delete_selection',
           'clean_selections']

FOLDER = 'selections'
#: Default most selections per run.
MAX_COUNT = 1000
#: Default most bytes the selections of one run take on disk.
MAX_BYTES = 64 << 20
# <date>T<time>[<microseconds>]_<random>: ids sort by creation
_ID = re.compile(r'\d{8}T\d{6}(\d{6})?_[0-9a-f]{12}')
_TEMP = '.tmp_'


def _usage(folder: str) -> Tuple[int, int]:
    """(selections, bytes) in a selections folder."""
    count = size = 0
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0, 0
    for name in names:
        try:
            size += os.stat(osp.join(folder, name)).st_size
        except OSError:
            continue  # removed meanwhile
        count += name.endswith('.json') and not name.startswith('.')
    return count, size


def save_selection(run: Run, name: str, indices: List[int],
                   label: str = None, note: str = None,
                   max_count: int = MAX_COUNT,
                   max_bytes: int = MAX_BYTES) -> dict:
    """Save a selection of a run's samples; return it as listed.

    Args:
        run (Run): The run.
        name (str): A name for people.
        indices (list[int]): DATASET indices (``index`` column); repeats
            are dropped, order kept.
        label (str, optional): Class name to give the samples on export.
        note (str, optional): Free text.
        max_count (int): Most selections the run may hold.
        max_bytes (int): Most bytes its selections may take.

    Returns:
        dict: ``id``, ``name``, ``label``, ``indices``, ``note``,
        ``created`` and ``file`` (the CSV, relative to the run directory).

    Raises:
        UserError: An index that is not a sample of the run.
        Conflict: The run holds ``max_count`` selections or ``max_bytes``.
        Forbidden: The run's ``selections`` is a symlink, not a folder.

    Examples:
        >>> save_selection(Run(run_dir), 'odd sevens', [17, 42])['file']
        'selections/20261123T150348012345_1a2b3c4d5e6f.csv'
    """
    wanted = list(dict.fromkeys(int(i) for i in indices))
    rows = run.positions(wanted, hint='the index field of /points')
    folder = real_folder(run.path, FOLDER)
    count, size = _usage(folder)
    if count >= max_count or size >= max_bytes:
        raise Conflict(f'the run holds {count} selections ({size} bytes); '
                       f'the limit is {max_count} selections, {max_bytes} '
                       'bytes: delete some (DELETE /api/runs/{run}/'
                       'selections/{id})')
    now = time.time()
    # time first, to the microsecond, so that names sort by creation;
    # uuid4 makes them unique
    selection_id = time.strftime('%Y%m%dT%H%M%S', time.localtime(now)) + \
        f'{int(now % 1 * 1e6):06d}_{uuid.uuid4().hex[:12]}'
    csv_name = f'{FOLDER}/{selection_id}.csv'
    labels, classes = run.labels, run.classes  # once: labels is a copy
    write_table(osp.join(run.path, csv_name), {
        'index': wanted,
        'img_path': [run.table['img_path'][r] for r in rows],
        'gt_class': [_class(int(labels[r]), classes) for r in rows]})
    record = dict(id=selection_id, name=name, label=label, indices=wanted,
                  note=note,
                  created=time.strftime('%Y-%m-%dT%H:%M:%S%z',
                                        time.localtime(now)),
                  file=csv_name)
    write_json(osp.join(folder, f'{selection_id}.json'), record)
    return record


def _class(label: int, classes) -> str:
    if classes and 0 <= label < len(classes):
        return str(classes[label])
    return str(label)


def _ids(folder: str) -> List[str]:
    """Ids of complete selections (both files), oldest first."""
    try:
        names = set(os.listdir(folder))
    except FileNotFoundError:
        return []
    return sorted(n[:-5] for n in names if n.endswith('.json') and
                  _ID.fullmatch(n[:-5]) and f'{n[:-5]}.csv' in names)


def _read(folder: str, selection_id: str) -> dict:
    # from the run down: neither the file nor selections/ may be a link,
    # a FIFO or a device; one that is reads as not ours
    try:
        record = json.loads(read_regular(
            osp.join(folder, f'{selection_id}.json'), MAX_JSON_BYTES,
            osp.dirname(folder)))
    except UnsafeFile as err:
        raise ValueError(str(err)) from None
    if not isinstance(record, dict):
        raise ValueError('not a selection record')
    return record


def list_selections(run: Run, offset: int = 0,
                    limit: int = 100) -> Tuple[int, List[dict]]:
    """One page of the run's saved selections, oldest first.

    Records are summaries: ``n_indices`` stands for the indices, which
    :func:`get_selection` returns (a page of big selections would
    otherwise be megabytes).

    Returns:
        tuple[int, list[dict]]: The number of selections, and the page.

    Examples:
        >>> total, page = list_selections(Run(run_dir))
        >>> [s['name'] for s in page]
        ['odd sevens']
    """
    folder = real_folder(run.path, FOLDER, create=False)
    ids = _ids(folder)
    records = []
    for selection_id in ids[offset:offset + limit]:
        try:
            record = _read(folder, selection_id)
        except (OSError, ValueError):
            continue  # removed while listing, or not ours
        record['n_indices'] = len(record.pop('indices', None) or ())
        records.append(record)
    return len(ids), records


def get_selection(run: Run, selection_id: str) -> dict:
    """A saved selection with its indices; :class:`NotFound` if none."""
    folder = real_folder(run.path, FOLDER, create=False)
    if selection_id not in _ids(folder):
        raise NotFound(f'no selection {selection_id!r} in the run')
    try:
        return _read(folder, selection_id)
    except (OSError, ValueError):
        raise NotFound(f'no selection {selection_id!r} in the run') from None


def delete_selection(run: Run, selection_id: str) -> None:
    """Remove a selection: its JSON first, so it is never half listed."""
    folder = real_folder(run.path, FOLDER, create=False)
    if selection_id not in _ids(folder):
        raise NotFound(f'no selection {selection_id!r} in the run')
    for ext in ('.json', '.csv'):
        try:
            os.remove(osp.join(folder, selection_id + ext))
        except FileNotFoundError:
            pass


def clean_selections(run_dir: str) -> List[str]:
    """Remove what interrupted writes left in ``RUN/selections``.

    ``.tmp_*`` files, CSVs without their JSON and JSONs without their CSV.
    Call it only when no other process is writing selections of the run
    (the server does at start-up, holding its state lock). A
    ``selections`` that is a symlink is left alone: what it points at is
    not the run's.

    Returns:
        list[str]: The names removed.
    """
    try:
        folder = real_folder(run_dir, FOLDER, create=False)
        names = set(os.listdir(folder))
    except (Forbidden, OSError):
        return []
    removed = []
    for name in sorted(names):
        stem, ext = osp.splitext(name)
        other = {'.csv': '.json', '.json': '.csv'}.get(ext)
        if name.startswith(_TEMP) or (
                other and _ID.fullmatch(stem) and stem + other not in names):
            try:
                os.remove(osp.join(folder, name))
                removed.append(name)
            except OSError:
                continue
    return removed
