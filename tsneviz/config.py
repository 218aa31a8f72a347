"""Configuration: the mmengine config, CLI overrides, work dir, layout block.

Precedence everywhere is: command line > config file > tsneviz defaults,
the mmengine convention (``--cfg-options`` beats the file).
"""
import ast
import os.path as osp
from typing import Optional

from mmengine.config import Config, ConfigDict, DictAction

from tsneviz.errors import UserError


class _DictCalls(ast.NodeTransformer):
    """``dict(a=1)`` written as ``{'a': 1}``, for :func:`ast.literal_eval`.

    A resolved config is dumped by mmengine with ``dict(...)`` calls; any
    other call (or a ``dict`` with positional or ``**`` arguments) is left
    as it is, and :func:`ast.literal_eval` then refuses it.
    """

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == 'dict' and \
                not node.args and all(kw.arg for kw in node.keywords):
            return ast.Dict(keys=[ast.Constant(kw.arg)
                                  for kw in node.keywords],
                            values=[kw.value for kw in node.keywords])
        # mmengine dumps keys that are not names as dict({...})
        if isinstance(node.func, ast.Name) and node.func.id == 'dict' and \
                len(node.args) == 1 and not node.keywords and \
                isinstance(node.args[0], ast.Dict):
            return node.args[0]
        return node


def load_resolved_config(path: str) -> Config:
    """A run's ``config.py`` read as data: its Python is never run.

    A run directory stores the resolved config that mmengine dumped: plain
    assignments of numbers, strings, lists, tuples and ``dict(...)``. That
    is all this reads, so a run directory written by someone else (a shared
    ``work_dirs``, a run copied from elsewhere) cannot run code in the
    process that reads it, as :func:`load_config` would (mmengine executes
    a ``.py`` config).

    Args:
        path (str): The run's ``config.py``.

    Returns:
        Config: The config, as :func:`load_config` would give it.

    Raises:
        UserError: The file is not a plain resolved config (an import, a
            call, an expression); the message names the line.

    Examples:
        >>> cfg = load_resolved_config('work_dirs/digits/tsne_x/config.py')
        >>> cfg.model.type
        'ImageClassifier'
    """
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f'could not read config {path}: {err}') from None
    values = {}
    for node in tree.body:
        try:
            if not isinstance(node, ast.Assign) or len(node.targets) != 1 \
                    or not isinstance(node.targets[0], ast.Name):
                raise ValueError('not an assignment of a name')
            values[node.targets[0].id] = ast.literal_eval(
                _DictCalls().visit(node.value))
        except ValueError:
            raise UserError(
                f'{path}, line {node.lineno}: a run\'s config is read as '
                'data (names set to numbers, strings, lists and dict(...)),'
                ' never run as Python, and this line is not data; write '
                'the run again with tools/vis_tsne.py') from None
    return Config(values, filename=path)


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read an mmengine config and apply ``--cfg-options`` to it.

    Args:
        path (str): Config file; may inherit ``mmpretrain::`` configs.
        cfg_options (dict, optional): Overrides from ``DictAction``.
            Defaults to None.

    Returns:
        Config: The resolved config.

    Examples:
        >>> cfg = load_config('configs/digits/resnet18-slim_digits.py',
        ...                   {'test_dataloader.batch_size': 64})
    """
    if not osp.isfile(path):
        raise UserError(f'config not found: {path}; pass the path of an '
                        'mmpretrain config file')
    try:
        cfg = Config.fromfile(path)
    except Exception as err:  # syntax errors, bad _base_, missing packages
        reason = str(err).strip().splitlines()[-1] if str(err) else \
            type(err).__name__
        raise UserError(f'could not read config {path}: {reason}') from err
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` for ``--cfg-options``, minus silent losses.

    ``DictAction`` removes every space from a value, so
    ``data_root='/data/my set'`` becomes ``/data/myset``, and a value split
    by the shell (``data_root=/data/my set``, unquoted) ends in a
    traceback. Neither quoting keeps the space, so a value that names an
    existing path only with its spaces, or a word that is not
    ``KEY=VALUE``, is refused in one line that says to set the path in the
    config file instead.

    Examples:
        >>> parser.add_argument('--cfg-options', nargs='+',
        ...                     action=CfgOptionsAction)
    """

    def __call__(self, parser, namespace, values, option_string=None):
        flag = option_string or self.dest
        for i, word in enumerate(values or ()):
            if '=' in word:
                continue
            if i and '=' in values[i - 1]:
                key, value = values[i - 1].split('=', 1)
                _refuse_lost_spaces(flag, key, f'{value} {word}')
            raise UserError(f'{flag}: {word!r} is not KEY=VALUE; give each '
                            'setting as key=value (a value cannot hold '
                            'spaces: set such a value in the config file)')
        super().__call__(parser, namespace, values, option_string)
        for word in values or ():
            key, value = word.split('=', 1)
            if ' ' in value:
                _refuse_lost_spaces(flag, key, value)


def _refuse_lost_spaces(flag: str, key: str, value: str) -> None:
    """Refuse a path that exists with its spaces but not without them."""
    # what DictAction keeps of a value, as it strips it
    value = value.strip('\'"')
    kept = value.replace(' ', '')
    if osp.exists(value) and not osp.exists(kept):
        raise UserError(
            f'{flag} {key}={value!r}: {flag} drops the spaces of a value '
            f"(mmengine's DictAction) and {kept!r} does not exist; set "
            f'{key} to {value!r} in the config file instead')


def resolve_work_dir(cfg: Config, config_path: str,
                     work_dir: Optional[str] = None) -> str:
    """Work dir: CLI > ``work_dir`` in the file > ``work_dirs/<config>``.

    A work dir that is an existing file is refused here, before the model
    and the data are loaded.
    """
    from tsneviz.rundir import check_work_dir
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])
    check_work_dir(cfg.work_dir)
    return cfg.work_dir


def dataloader_config(cfg: Config, test_cfg_path: Optional[str] = None,
                      cfg_options: Optional[dict] = None) -> ConfigDict:
    """The ``test_dataloader`` to sample from, optionally from another file.

    Self-supervised configs have no ``test_dataloader``; ``--test-cfg`` names
    a config that has one, as in mmpretrain's tool. ``--cfg-options`` apply
    to that file too, so ``test_dataloader.dataset.data_root=...`` works
    either way.
    """
    if test_cfg_path is not None:
        source = load_config(test_cfg_path, cfg_options)
        where = test_cfg_path
    else:
        source, where = cfg, None
    loader = source.get('test_dataloader', None)
    if loader is None or loader.get('dataset', None) is None:
        if where is None:
            raise UserError(
                'the config has no test_dataloader; pass --test-cfg with a '
                'config that has one (e.g. the supervised config of the '
                'same dataset)')
        raise UserError(f'--test-cfg {where} has no test_dataloader with a '
                        'dataset; pass a config that has one')
    return ConfigDict(loader.to_dict() if hasattr(loader, 'to_dict')
                      else dict(loader))


def layout_settings(cfg: Config, method: str, cli: dict):
    """Settings of a layout method from its config block and the CLI.

    The keys a block may hold are the parameters the method's reducer
    declares (:func:`tsneviz.reduction.layout_keys`), named like their CLI
    flags; for t-SNE they include ``backend`` and every backend's own.

    Args:
        cfg (Config): The resolved config.
        method (str): A ``--method`` name: ``'tsne'``, ``'umap'``,
            ``'pca'`` or any registered reducer.
        cli (dict): CLI values by key; ``None`` means "not given".

    Returns:
        tuple: ``(settings, ignored)``; ``ignored`` names the CLI flags that
        were given but do not apply to ``method``.

    Examples:
        >>> layout_settings(Config(), 'pca', {'perplexity': 5.0,
        ...                                   'n_components': 3})
        ({'n_components': 3}, ['perplexity'])
    """
    from tsneviz.reduction.fields import layout_keys
    keys = layout_keys(method)
    given = {k: v for k, v in cli.items() if v is not None}
    ignored = sorted(k for k in given if k not in keys)
    from_file = dict(cfg.get(method, None) or {})
    unknown = sorted(set(from_file) - set(keys))
    if unknown:
        raise UserError(f"unknown key(s) in the config's {method} block: "
                        f'{", ".join(unknown)}; valid keys are '
                        f'{", ".join(keys)}')
    from_file.update({k: v for k, v in given.items() if k in keys})
    return from_file, ignored


def tsne_settings(cfg: Config, cli: dict) -> dict:
    """Merge the config's ``tsne`` block with CLI values that were given.

    Args:
        cfg (Config): The resolved config.
        cli (dict): CLI values by key; ``None`` means "not given".

    Returns:
        dict: Settings with ``backend`` plus reducer parameters.

    Examples:
        >>> cfg = Config(dict(tsne=dict(perplexity=50.0, backend='sklearn')))
        >>> tsne_settings(cfg, {'perplexity': 10.0, 'init': None})
        {'backend': 'sklearn', 'perplexity': 10.0}
    """
    return layout_settings(cfg, 'tsne', cli)[0]
