"""Image and dataset paths of a run, independent of the current folder.

mmpretrain configs usually give a relative ``data_root``, which means
"relative to the folder the command runs in". A run resolves such paths
when it is made (:func:`absolute`) and records the folder (``cwd`` in
``run.json``), so every later tool finds the images from any folder.
Runs made before that may hold relative paths: :func:`resolve` takes them
relative to the recorded ``cwd``, and refuses to guess without one.
"""
import os
import os.path as osp
from typing import List, Optional

from tsneviz.errors import UserError

__all__ = ['absolute', 'resolve', 'run_image_paths', 'run_data_prefix',
           'run_data_root']


def _is_url(path: str) -> bool:
    # file backends such as petrel ('s3://...') have no local folder
    return '://' in path


def absolute(path: Optional[str]) -> Optional[str]:
    """``path`` made absolute against the current folder.

    None, '' and URLs are returned unchanged.

    Examples:
        >>> absolute('data/digits')  # run from /home/me/project
        '/home/me/project/data/digits'
    """
    if not path or _is_url(str(path)):
        return path
    return osp.abspath(os.fspath(path))


def resolve(path: Optional[str], manifest: dict, strict: bool = True
            ) -> Optional[str]:
    """A path recorded in a run, made absolute.

    Args:
        path (str, optional): A path from ``samples.csv`` or ``run.json``.
        manifest (dict): The run's ``run.json``; its ``cwd`` is the folder
            relative paths start from.
        strict (bool): Raise when a relative path cannot be resolved (an
            older run without ``cwd``); otherwise return it unchanged.
            Defaults to True.

    Raises:
        UserError: ``path`` is relative and the run records no ``cwd``.

    Examples:
        >>> resolve('data/digits/val/0/10.png', {'cwd': '/home/me/project'})
        '/home/me/project/data/digits/val/0/10.png'
    """
    if not path or _is_url(path) or osp.isabs(path):
        return path
    cwd = manifest.get('cwd')
    if cwd:
        return osp.normpath(osp.join(cwd, path))
    if not strict:
        return path
    raise UserError(
        f'the run records the relative path {path} but not the folder it '
        'was started from, so it cannot be found from here; add "cwd": '
        '"/that/folder" to its run.json, or make the run again (new runs '
        'record absolute paths)')


def run_image_paths(run, strict: bool = True) -> List[str]:
    """Absolute image paths of a :class:`~tsneviz.rundir.Run`, in order.

    Samples without an image keep ''.
    """
    return [resolve(str(p), run.manifest, strict)
            for p in run.table['img_path']]


def run_data_prefix(run) -> Optional[str]:
    """The run's ``data_prefix`` (where ``img_path`` values start), absolute.
    """
    return resolve(run.manifest.get('data_prefix'), run.manifest)


def run_data_root(run) -> Optional[str]:
    """The run's ``data_root``, absolute."""
    return resolve(run.manifest.get('data_root'), run.manifest)
