"""Export a selection of a run's samples: a new labelled folder or lines.

A selection is a set of DATASET indices (the ``index`` column of
``samples.csv``), e.g. a lasso in the interactive explorer saved with its
download button, or a list typed by hand. The indices file is either

- a CSV file with a header row that has an ``index`` column (other
  columns are ignored; comma-separated, as the explorer writes it)::

      index,img_path,gt_class
      17,/data/digits/val/3/1000.png,3
      42,/data/digits/val/5/1012.png,5

- or plain text, one integer per line::

      17
      42

In both, blank lines and lines starting with ``#`` are ignored.

:func:`export_selection` then copies or links the images into
``OUT/<label>/`` (an image-folder class for the next training round), or
appends ``relative/path label`` lines to an mmpretrain annotation file.
"""
import csv
import filecmp
import io
import os
import os.path as osp
from typing import Iterable, List, Union

import numpy as np

from tsneviz.data.paths import run_data_prefix, run_image_paths
from tsneviz.errors import UserError
from tsneviz.exporters.splits import write_annotation
from tsneviz.registry import EXPORTERS
from tsneviz.rundir import Run, copy_file

__all__ = ['CSV_COLUMNS', 'MODES', 'read_indices', 'export_selection']

MODES = ('copy', 'link', 'append')

#: Columns of the selection CSV the explorer downloads, in order; only
#: ``index`` is read back (:func:`read_indices`), the rest are for people.
CSV_COLUMNS = ('index', 'position', 'img_path', 'gt_label', 'gt_class',
               'pred_label', 'pred_class', 'score', 'loss')


def _int(text: str, path: str, line: int) -> int:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value.is_integer():
        raise UserError(f'{path} line {line}: {text!r} is not an integer '
                        'dataset index')
    return int(value)


def read_indices(path: str) -> List[int]:
    """Dataset indices from a selection file (format: module docstring).

    Args:
        path (str): CSV with an ``index`` column, or one integer per line.

    Returns:
        list[int]: The indices in file order, repeats removed.

    Examples:
        >>> read_indices('selection.csv')
        [17, 42]
    """
    if not osp.isfile(path):
        raise UserError(f'indices file not found: {path}')
    try:
        with open(path, encoding='utf-8-sig') as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f'cannot read indices file {path}: {err}') from None
    numbered = [(n, line) for n, line in
                enumerate(text.splitlines(), start=1)
                if line.strip() and not line.lstrip().startswith('#')]
    if not numbered:
        raise UserError(f'indices file {path} holds no indices')
    first = numbered[0][1]
    values = []
    try:
        _int(first.strip(), path, numbered[0][0])
        is_csv = False
    except UserError:
        is_csv = True  # a first line that is no integer is a header
    if is_csv:
        body = '\n'.join(line for _, line in numbered)
        reader = csv.reader(io.StringIO(body))
        header = [h.strip() for h in next(reader)]
        if 'index' not in header:
            raise UserError(f'{path}: the CSV header {",".join(header)!r} '
                            'has no index column; write a header with an '
                            '"index" column, or one integer per line')
        column = header.index('index')
        for (n, _), row in zip(numbered[1:], reader):
            if column >= len(row) or not row[column].strip():
                raise UserError(f'{path} line {n}: no index value')
            values.append(_int(row[column].strip(), path, n))
    else:
        values = [_int(line.strip(), path, n) for n, line in numbered]
    return list(dict.fromkeys(values))


def _positions(run: Run, indices: Iterable[int]) -> np.ndarray:
    """Run rows of dataset indices; an error naming the missing ones."""
    indices = list(indices)
    if not indices:
        raise UserError('the selection is empty')
    return run.positions(indices)


def _same_file(src: str, dst: str, mode: str) -> bool:
    """Whether ``dst`` already is this export of ``src`` (a re-run)."""
    if mode == 'link':
        return osp.islink(dst) and \
            osp.realpath(dst) == osp.realpath(src)
    return osp.isfile(dst) and not osp.islink(dst) and \
        filecmp.cmp(src, dst, shallow=False)


def _unique_name(folder: str, name: str, src: str, mode: str,
                 taken: set) -> str:
    """``name`` or ``stem_1.ext``, ``stem_2.ext``...: never overwrite.

    Class folders often reuse file names (``val/3/1.png`` and
    ``val/5/1.png``); a name already used by another image gets a suffix,
    and a file that already is this image is reused, so exporting twice
    does not duplicate.
    """
    stem, ext = osp.splitext(name)
    candidate, n = name, 0
    while True:
        dst = osp.join(folder, candidate)
        if candidate not in taken and (not osp.lexists(dst) or
                                       _same_file(src, dst, mode)):
            return candidate
        n += 1
        candidate = f'{stem}_{n}{ext}'


@EXPORTERS.register_module(name='selection')
def export_selection(run_dir: str, indices: Union[Iterable[int], str],
                     label: str, out: str, mode: str = 'copy') -> dict:
    """Copy, link or list the images of a selection under a label.

    Args:
        run_dir (str): A complete run directory.
        indices (Iterable[int] | str): Dataset indices (the ``index``
            column of ``samples.csv``), or the path of an indices file
            (see :func:`read_indices`).
        label (str): With ``copy``/``link`` the folder name (a class name
            for an image-folder dataset); with ``append`` one of the run's
            class names, whose class id is written.
        out (str): With ``copy``/``link`` a folder: images go to
            ``out/label/``; with ``append`` an annotation file, created if
            missing, whose lines are ``relative/path label`` relative to
            the run's ``data_prefix`` (``run.json``), as
            ``CustomDataset(data_prefix=..., ann_file=out)`` reads them.
        mode (str): ``'copy'``, ``'link'`` (symbolic links to the absolute
            image paths) or ``'append'``. Defaults to ``'copy'``.

    Returns:
        dict: ``mode``, ``out`` (folder or file), ``files`` (written
        paths, copy/link; image paths, append), ``added`` (new files or
        lines) and ``skipped`` (already there).

    Examples:
        >>> export_selection(run_dir, [17, 42], 'hard_3', 'exports')
        {'mode': 'copy', 'out': 'exports/hard_3', ...}
        >>> export_selection(run_dir, 'sel.csv', '3', 'train.txt',
        ...                  mode='append')['added']
        2
    """
    if mode not in MODES:
        raise UserError(f'unknown mode {mode!r}; choose one of '
                        f'{", ".join(MODES)}')
    label = str(label)
    if not label.strip() or label in ('.', '..') or '/' in label or \
            os.sep in label:
        raise UserError(f'label {label!r} cannot be a folder name; give a '
                        'plain name such as hard_3')
    run = Run(run_dir)
    if isinstance(indices, (str, os.PathLike)):
        indices = read_indices(os.fspath(indices))
    rows = _positions(run, indices)
    all_paths = run_image_paths(run)
    paths = [all_paths[r] for r in rows]

    if mode == 'append':
        classes = run.classes or []
        if label not in classes:
            shown = ', '.join(classes[:20]) if classes else 'none recorded'
            raise UserError(f'label {label!r} is not a class of the run '
                            f'(classes: {shown}); an annotation file needs '
                            'a class id, so pick one of those, or use mode '
                            'copy or link to start a new class folder')
        folder = osp.dirname(osp.abspath(out))
        if not osp.isdir(folder):
            raise UserError(f'folder of the annotation file not found: '
                            f'{folder}')
        if osp.isdir(out):
            raise UserError(f'{out} is a folder; with mode append --out is '
                            'an annotation file')
        added = write_annotation(out, paths, [classes.index(label)] *
                                 len(paths), run_data_prefix(run),
                                 append=True)
        _record(run_dir, out, [out], label, mode, len(paths))
        return dict(mode=mode, out=out, files=paths, added=added,
                    skipped=len(paths) - added)

    missing = [p for p in paths if not osp.isfile(p)]
    if missing:
        raise UserError(f'{len(missing)} selected images are not found, '
                        f'e.g. {missing[0]}; was the dataset moved?')
    folder = osp.join(out, label)
    if osp.exists(out) and not osp.isdir(out):
        raise UserError(f'--out {out} is a file; with mode {mode} it is a '
                        'folder (images go to OUT/LABEL/)')
    os.makedirs(folder, exist_ok=True)
    written, taken, added = [], set(), 0
    for src in paths:
        name = _unique_name(folder, osp.basename(src), src, mode, taken)
        taken.add(name)
        dst = osp.join(folder, name)
        written.append(dst)
        if osp.lexists(dst):  # this very image, from an earlier export
            continue
        # through a temporary name: an interrupted export leaves no
        # half-written image under a real name
        copy_file(src, dst, link=mode != 'copy')
        added += 1
    _record(run_dir, folder, written, label, mode, len(paths))
    return dict(mode=mode, out=folder, files=written, added=added,
                skipped=len(written) - added)


def _record(run_dir: str, out: str, files: List[str], label: str,
            mode: str, count: int) -> None:
    # Like every exporter: run.json's ``exports`` names the latest
    # selection export; run.json is written last.
    from tsneviz.exporters.base import record_export
    record_export(run_dir, 'selection', out, None,
                  dict(label=label, mode=mode, n_samples=count), files)
