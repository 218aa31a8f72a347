"""What a job may ask for: checked before it is queued.

A config is Python that the server executes and a checkpoint a pickle it
loads, and the dataset is files it reads and then serves as images, so:

- the config is a name RELATIVE to the configs directory and must resolve
  (symlinks followed) inside it; the checkpoint likewise, inside the
  checkpoints directory (and it is always loaded safely);
- ``cfg_options`` may set only the keys of :data:`OPTION_CHECKS`, each
  with a checked value (a worker count is bounded like the ``num_workers``
  field: an option must not be a way around a field's limit);
- every dataset path the job would read, the config's own and the
  overrides', joined as mmengine joins them (``data_root`` with
  ``data_prefix`` and ``ann_file``, relative to the server's working
  directory) and resolved with symlinks followed, must lie inside one of
  the data folders (``--data-dir``). The refusal names the field, never
  the path, and is the same whether the path exists or not: a job cannot
  probe the file system. Only local paths are taken: a URL (``http://``,
  ``s3://``: anything mmengine's fileio would fetch) and a leading ``~``
  (mmpretrain expands it to a home folder) are refused, so the path
  checked is the path the worker reads;
- a symlinked data folder may be re-pointed while the job waits: the
  worker checks the dataset again right before it reads
  (:func:`check_data_again`).
"""
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from tsneviz.config import load_config
from tsneviz.errors import UserError
from tsneviz.server.errors import Forbidden, Unprocessable
from tsneviz.server.models import MAX_BATCH, MAX_WORKERS
from tsneviz.server.security import contained, resolve_inside

__all__ = ['OPTION_CHECKS', 'ALLOWED_OPTIONS', 'check_job', 'dataset_paths',
           'check_data_again']

_PATH_KEYS = ('data_root', 'data_prefix', 'ann_file')


def _path(key: str, value):
    if not isinstance(value, str) or '\0' in value:
        raise Unprocessable(f'cfg_options {key} must be a path (a string)')
    return value


def _bool(key: str, value):
    if not isinstance(value, bool):
        raise Unprocessable(f'cfg_options {key} must be true or false')
    return value


def _int(low: int, high: int):
    def check(key: str, value):
        if isinstance(value, bool) or not isinstance(value, int) or \
                not low <= value <= high:
            raise Unprocessable(f'cfg_options {key} must be an integer '
                                f'from {low} to {high}')
        return value
    return check


#: ``cfg_options`` keys a job may set, each with its value check.
OPTION_CHECKS = {
    'test_dataloader.dataset.data_root': _path,
    'test_dataloader.dataset.data_prefix': _path,
    'test_dataloader.dataset.data_prefix.img_path': _path,
    'test_dataloader.dataset.ann_file': _path,
    'test_dataloader.dataset.with_label': _bool,
    'test_dataloader.batch_size': _int(1, MAX_BATCH),
    'test_dataloader.num_workers': _int(0, MAX_WORKERS),
    'test_dataloader.persistent_workers': _bool,
}
ALLOWED_OPTIONS = frozenset(OPTION_CHECKS)


def _local(field: str, value: str) -> str:
    """``value`` when it is a plain local path; else :class:`Forbidden`.

    mmengine's fileio reads a path holding ``://`` (``http://``,
    ``s3://``, petrel's ``cluster:s3://``) through a remote backend, and
    mmpretrain's datasets expand a leading ``~`` (``ann_file``, a string
    ``data_prefix``). With both refused, the worker's rules (mmengine's
    ``is_abs`` and ``join_path``, mmpretrain's ``expanduser``) are plain
    ``os.path`` ones, which :func:`dataset_paths` follows.
    """
    if '://' in value:
        scheme = value.split('://', 1)[0].rsplit(':', 1)[-1]
        raise Forbidden(f'the dataset\'s {field} is a URL ({scheme}://): '
                        'jobs read only local files inside the data '
                        'folders (--data-dir)')
    if value.startswith('~'):
        raise Forbidden(f'the dataset\'s {field} starts with ~, which '
                        'would be expanded to a home folder: give a path '
                        'inside the data folders (--data-dir)')
    return value


def dataset_paths(node, cwd: str) -> Iterator[Tuple[str, str]]:
    """(field, resolved path) of every dataset path in a dataset config.

    Walks wrappers (``dataset=``, ``datasets=[...]``) too. A dataset with
    no ``data_root`` reads relative to the working directory, so that
    directory counts as its root.

    Raises:
        Forbidden: A path that is a URL or starts with ``~``
            (:func:`_local`).

    Examples:
        >>> list(dataset_paths(dict(data_root='d', data_prefix='val'), '/w'))
        [('data_root', '/w/d'), ('data_prefix', '/w/d/val')]
    """
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from dataset_paths(item, cwd)
        return
    if not hasattr(node, 'items'):
        return
    if any(k in node for k in _PATH_KEYS):
        root = osp.join(cwd, _local('data_root',
                                    str(node.get('data_root') or '')))
        yield 'data_root', osp.realpath(root)
        prefix = node.get('data_prefix') or ''
        prefixes = prefix.items() if hasattr(prefix, 'items') else \
            [('', prefix)]
        for name, value in prefixes:
            if isinstance(value, str) and value:
                field = f'data_prefix.{name}' if name else 'data_prefix'
                yield field, osp.realpath(osp.join(root,
                                                   _local(field, value)))
        ann = node.get('ann_file')
        if isinstance(ann, str) and ann:
            yield 'ann_file', osp.realpath(osp.join(
                root, _local('ann_file', ann)))
    for key, value in node.items():
        if isinstance(value, (list, tuple)) or hasattr(value, 'items'):
            if key not in ('pipeline', 'metainfo'):
                yield from dataset_paths(value, cwd)


def _check_data(cfg, data_dirs: Sequence[str], cwd: str) -> None:
    loader = cfg.get('test_dataloader', None)
    dataset = loader.get('dataset', None) if loader is not None else None
    if dataset is None:
        raise UserError('the config has no test_dataloader.dataset')
    found = False
    for field, path in dataset_paths(dataset, cwd):
        found = True
        if not any(contained(path, d) for d in data_dirs):
            raise Forbidden(f'the dataset\'s {field} is outside the data '
                            'folders (--data-dir): jobs read data only '
                            'from inside them')
    if not found:
        raise Forbidden('the dataset names no data_root / data_prefix / '
                        'ann_file inside the data folders (--data-dir)')


def check_data_again(config: str, cfg_options: Optional[dict],
                     data_dirs: Sequence[str], cwd: str) -> None:
    """The dataset check of :func:`check_job` again, as a job starts.

    The worker calls it right before it reads: a data folder that is a
    symlink may have been re-pointed outside the data folders while the
    job waited in the queue, and the check at submission cannot see that.

    Args:
        config (str): The job's config, resolved at submission.
        cfg_options (dict | None): Its checked ``cfg_options``.
        data_dirs (Sequence[str]): The folders the dataset must lie in.
        cwd (str): The worker's working directory.

    Raises:
        Forbidden: A dataset path now outside the data folders; the job
            fails with this message.
    """
    try:
        _check_data(load_config(config, cfg_options or None), data_dirs, cwd)
    except Forbidden as err:
        raise Forbidden(f'{err}; checked again as the job started: the '
                        'data changed since the job was submitted') from None


def check_job(request: dict, configs_dir: str, checkpoints_dir:
              Optional[str], data_dirs: List[str], cwd: str) -> Dict:
    """Check a job request; the resolved config, checkpoint and options.

    Args:
        request (dict): A :class:`~tsneviz.server.models.JobIn` as dict.
        configs_dir (str): The only folder configs come from.
        checkpoints_dir (str | None): The only folder checkpoints come
            from; None: none may be named.
        data_dirs (list[str]): The folders the dataset must lie in.
        cwd (str): The job's working directory (relative data paths).

    Returns:
        dict: ``config``, ``checkpoint`` (absolute paths or None) and
        ``cfg_options``.

    Raises:
        Forbidden: Anything outside its folder, or an option not allowed.
        Unprocessable: An option value out of range.
        UserError: A config that does not exist or does not load.
    """
    config = resolve_inside(request['config'], configs_dir, 'config',
                            '--configs-dir')
    if not config.endswith('.py'):
        raise UserError(f'config {request["config"]!r} is not a .py '
                        'config file')
    checkpoint = None
    if request.get('checkpoint'):
        checkpoint = resolve_inside(request['checkpoint'], checkpoints_dir,
                                    'checkpoint', '--checkpoints-dir')
    options = dict(request.get('cfg_options') or {})
    refused = sorted(set(options) - ALLOWED_OPTIONS)
    if refused:
        raise Forbidden(f'cfg_options {", ".join(refused)} may not be '
                        'set over the API; allowed: '
                        f'{", ".join(sorted(ALLOWED_OPTIONS))}')
    options = {k: OPTION_CHECKS[k](k, v) for k, v in options.items()}
    if not data_dirs:
        raise Forbidden('jobs need a data folder: the server was started '
                        'without --data-dir')
    try:
        cfg = load_config(config, options or None)
    except UserError:
        raise
    except Exception as err:  # merge_from_dict on a mismatched key
        raise UserError(f'cannot apply cfg_options: {err}') from None
    _check_data(cfg, data_dirs, cwd)
    return dict(config=config, checkpoint=checkpoint, cfg_options=options)
