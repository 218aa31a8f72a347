"""The run directory: the contract between steps.

``work_dirs/<config>/tsne_<timestamp>/`` holds ``feat_<key>.npy`` and
``feat_<key>.png``, ``samples.csv`` (one row per sample), the resolved
``config.py``, ``tsne.log`` and ``run.json``. Every file is written to a
temporary name and renamed into place, and ``run.json`` comes last: a
directory without it is an incomplete run, and readers refuse it.
"""
import csv
import glob
import json
import os
import os.path as osp
import tempfile
from typing import Dict, Iterable, List, Optional

import numpy as np

from tsneviz.errors import UserError

MANIFEST = 'run.json'
TABLE = 'samples.csv'


def new_run_dir(work_dir: str, timestamp: str) -> str:
    """Create ``tsne_<timestamp>`` (suffixed if taken) and return its path."""
    os.makedirs(work_dir, exist_ok=True)
    base = osp.join(work_dir, f'tsne_{timestamp}')
    path, n = base, 1
    while True:
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            path, n = f'{base}_{n}', n + 1


def _atomic(path: str, write) -> str:
    folder = osp.dirname(osp.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp_',
                               suffix=osp.splitext(path)[1])
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json(path: str, obj) -> str:
    """Write JSON atomically (temporary file, then rename)."""
    data = json.dumps(obj, indent=2, default=_jsonable).encode()
    return _atomic(path, lambda f: f.write(data))


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_array(path: str, array: np.ndarray) -> str:
    """``np.save`` atomically."""
    return _atomic(path, lambda f: np.save(f, array))


def write_table(path: str, columns: Dict[str, Iterable]) -> str:
    """Write equal-length columns as CSV, atomically."""
    names = list(columns)
    rows = zip(*(columns[n] for n in names))

    def write(f):
        import io
        text = io.TextIOWrapper(f, encoding='utf-8', newline='')
        writer = csv.writer(text)
        writer.writerow(names)
        for row in rows:
            writer.writerow([_cell(v) for v in row])
        text.flush()
        text.detach()

    return _atomic(path, write)


def _cell(value):
    if isinstance(value, (float, np.floating)):
        return '' if np.isnan(value) else repr(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def read_table(path: str) -> Dict[str, List[str]]:
    """Read a CSV written by :func:`write_table` as columns of strings."""
    with open(path, newline='', encoding='utf-8') as f:
        reader = csv.reader(f)
        names = next(reader)
        cols = {n: [] for n in names}
        for row in reader:
            for n, v in zip(names, row):
                cols[n].append(v)
    return cols


def read_manifest(run_dir: str) -> dict:
    """The ``run.json`` of a complete run; a clear error otherwise."""
    path = osp.join(run_dir, MANIFEST)
    if not osp.isdir(run_dir):
        raise UserError(f'run directory not found: {run_dir}')
    if not osp.isfile(path):
        raise UserError(f'{run_dir} has no {MANIFEST}: it is not a complete '
                        'tsneviz run; run tools/vis_tsne.py again')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def find_cached_run(work_dir: str, feature_key: str) -> Optional[str]:
    """The newest complete run under ``work_dir`` with these features."""
    runs = sorted(glob.glob(osp.join(work_dir, 'tsne_*', MANIFEST)),
                  key=osp.getmtime, reverse=True)
    for manifest_path in runs:
        try:
            with open(manifest_path, encoding='utf-8') as f:
                manifest = json.load(f)
        except (OSError, ValueError):
            continue
        if manifest.get('extraction', {}).get('feature_key') != feature_key:
            continue
        run_dir = osp.dirname(manifest_path)
        keys = manifest['extraction'].get('keys', [])
        if keys and all(osp.isfile(osp.join(run_dir, f'{k}.npy'))
                        for k in keys):
            return run_dir
    return None
