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
from typing import Dict, Iterable, List, Optional, Sequence

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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: str, write) -> str:
    folder = osp.dirname(osp.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp_',
                               suffix=osp.splitext(path)[1])
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
        # mkstemp makes the file private (0600); give it the mode an
        # ordinary open() would, so reports and tables can be shared.
        os.chmod(tmp, 0o666 & ~_umask())
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


class Run:
    """A complete run directory, read back: what every later step uses.

    Args:
        path (str): The run directory (must hold ``run.json``).

    Attributes:
        path (str): The run directory.
        manifest (dict): ``run.json``.
        table (dict[str, np.ndarray]): ``samples.csv``, numeric columns as
            arrays (NaN for empty cells), text columns as object arrays.
        keys (list[str]): Feature keys, e.g. ``['feat_3']``.

    Examples:
        >>> run = Run('work_dirs/digits/tsne_20261123_144017')
        >>> run.features().shape, run.coords().shape
        ((540, 128), (540, 2))
    """

    def __init__(self, path: str):
        self.path = path
        self.manifest = read_manifest(path)
        self.keys = list(self.manifest['extraction']['keys'])
        self.table = {name: _typed(name, values) for name, values in
                      read_table(osp.join(path, TABLE)).items()}

    def __len__(self) -> int:
        return int(self.manifest['n_samples'])

    def key(self, key: Optional[str] = None) -> str:
        """``key`` checked against the run's keys; default the first."""
        if key is None:
            return self.keys[0]
        if key not in self.keys:
            raise UserError(f'{self.path} has no feature {key!r}; it has '
                            f'{", ".join(self.keys)}')
        return key

    def features(self, key: Optional[str] = None) -> np.ndarray:
        """(N, C) features of ``key``."""
        return np.load(osp.join(self.path, f'{self.key(key)}.npy'))

    def coords(self, key: Optional[str] = None) -> np.ndarray:
        """(N, 2 or 3) layout of ``key`` (``<method>_<key>.npy``)."""
        name = f"{self.method}_{self.key(key)}.npy"
        return np.load(osp.join(self.path, name))

    @property
    def method(self) -> str:
        """The layout method: ``'tsne'``, ``'umap'`` or ``'pca'``."""
        return self.manifest.get('layout', {}).get('method', 'tsne')

    @property
    def labels(self) -> np.ndarray:
        return self.table['gt_label'].astype(np.int64)

    @property
    def image_paths(self) -> List[str]:
        return [str(p) for p in self.table['img_path']]

    @property
    def classes(self) -> Optional[List[str]]:
        return self.manifest.get('classes')

    @property
    def has_predictions(self) -> bool:
        return 'pred_label' in self.table

    def positions(self, indices: Iterable[int],
                  hint: str = 'the index column of samples.csv'
                  ) -> np.ndarray:
        """Rows of the given DATASET indices, in order, repeats dropped.

        Raises:
            UserError: Naming a few indices that are not samples of the run.
        """
        row_of = {int(i): p for p, i in enumerate(self.table['index'])}
        wanted = list(dict.fromkeys(int(i) for i in indices))
        missing = [i for i in wanted if i not in row_of]
        if missing:
            shown = ', '.join(str(i) for i in missing[:5])
            more = f' and {len(missing) - 5} more' if len(missing) > 5 \
                else ''
            raise UserError(f'{len(missing)} of the indices are not samples '
                            f'of the run: {shown}{more} (they are dataset '
                            f'indices, {hint})')
        return np.array([row_of[i] for i in wanted], dtype=np.int64)

    def check_index(self, index: int) -> int:
        """A sample position of this run, or a clear error."""
        if not 0 <= index < len(self):
            raise UserError(f'index {index} is out of range: the run has '
                            f'{len(self)} samples (0..{len(self) - 1})')
        return index


# Columns that stay text even when every value looks like a number (class
# names such as '0'..'9', file names such as '17.png' without a folder).
TEXT_COLUMNS = ('img_path', 'gt_class', 'pred_class')


def _typed(name: str, values: List[str]) -> np.ndarray:
    if name in TEXT_COLUMNS:
        return np.array(values, dtype=object)
    try:
        return np.array([float(v) if v != '' else np.nan for v in values])
    except ValueError:
        return np.array(values, dtype=object)


def add_columns(run_dir: str, columns: Dict[str, Iterable]) -> str:
    """Add or replace per-sample columns of ``samples.csv``, atomically."""
    path = osp.join(run_dir, TABLE)
    table = read_table(path)
    n = len(next(iter(table.values()))) if table else 0
    for name, values in columns.items():
        values = list(values)
        if len(values) != n:
            raise ValueError(f'column {name!r} has {len(values)} values for '
                             f'{n} samples')
        table[name] = values
    return write_table(path, table)


def update_manifest(run_dir: str, sections: Optional[dict] = None,
                    outputs: Sequence[str] = ()) -> dict:
    """Merge sections into ``run.json`` and list new outputs; written last.

    Later steps (clusters, neighbours, exports) write their files first and
    then call this, so ``run.json`` stays the last file written and lists
    every output.

    Args:
        run_dir (str): A complete run directory.
        sections (dict, optional): Top-level keys to set, e.g.
            ``{'clusters': {...}}``.
        outputs (Sequence[str]): File names relative to ``run_dir``.

    Returns:
        dict: The new manifest.
    """
    manifest = read_manifest(run_dir)
    manifest.update(sections or {})
    listed = manifest.setdefault('outputs', [])
    listed.extend(o for o in outputs if o not in listed)
    write_json(osp.join(run_dir, MANIFEST), manifest)
    return manifest
