"""The layout parameters, read from the reducers' own declarations.

Each reducer declares what its parameters accept (``constraints``), their
defaults and which are command-line flags (``descriptions``). Everything
else that lists layout parameters reads them from here: the config's
``tsne``/``umap``/``pca`` block keys (:func:`layout_keys`), the CLI flags of
``tools/vis_tsne.py`` (:func:`layout_fields`) and the server's job model
(:meth:`LayoutField.bounds`), and the flags themselves
(:func:`add_layout_arguments`), so there is no second list to keep in step.
"""
import numbers
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from tsneviz.cli import number_or
from tsneviz.errors import UserError
from tsneviz.params import Interval, Options
from tsneviz.registry import REDUCERS, registered


def reducer_names() -> List[str]:
    """The ``--method`` names: the keys of ``REDUCERS``.

    Examples:
        >>> reducer_names()
        ['tsne', 'umap', 'pca']
    """
    return list(registered(REDUCERS))


def reducer_class(method: str) -> type:
    """The registered reducer of ``method``, or a UserError listing them."""
    reducers = registered(REDUCERS)
    if method not in reducers:
        raise UserError(f'unknown --method {method!r}; choose one of '
                        f'{", ".join(reducers)}')
    return reducers[method]


def layout_keys(method: str) -> Tuple[str, ...]:
    """The keys of ``method``'s config block (and of its settings).

    Examples:
        >>> layout_keys('pca')
        ('n_components', 'seed')
    """
    return tuple(reducer_class(method).declared())


@dataclass(frozen=True)
class LayoutField:
    """One layout parameter as every method that takes it declares it.

    Attributes:
        name (str): Parameter name, e.g. ``'perplexity'`` (flag
            ``--perplexity``).
        constraints (tuple): What it accepts (:mod:`tsneviz.params`), as
            the first method that takes it declares it.
        defaults (dict): ``{variant: default}``; a variant is a method, or
            a t-SNE backend.
        methods (tuple[str]): The ``--method`` names that take it.
        description (str): Help text; empty for a config-only parameter.
    """

    name: str
    constraints: tuple
    defaults: Dict[str, Any]
    methods: Tuple[str, ...]
    description: str = ''

    @property
    def is_flag(self) -> bool:
        """A command-line flag (it has a description), not config-only."""
        return bool(self.description)

    @property
    def choices(self) -> Optional[Tuple[Any, ...]]:
        """The allowed values when it takes only named values, else None."""
        rows = [c for c in self.constraints if c is not None]
        if rows and all(isinstance(c, Options) for c in rows):
            return tuple(v for c in rows for v in c.values)
        return None

    @property
    def names(self) -> Tuple[str, ...]:
        """Named values it takes besides numbers (``'auto'``), if any."""
        return tuple(v for c in self.constraints
                     if isinstance(c, Options) for v in c.values)

    @property
    def number_type(self) -> Optional[type]:
        """``int`` or ``float`` when it takes numbers, else None."""
        for c in self.constraints:
            if isinstance(c, Interval):
                return int if c.kind is numbers.Integral else float
        return None

    def bounds(self) -> dict:
        """Its numeric bounds as pydantic ``Field`` keywords.

        Examples:
            >>> field('early_exaggeration').bounds()
            {'ge': 1}
        """
        for c in self.constraints:
            if isinstance(c, Interval):
                out = {}
                if c.low is not None:
                    out['gt' if c.open_low else 'ge'] = c.low
                if c.high is not None:
                    out['le'] = c.high
                return out
        return {}

    def help(self) -> str:
        """The description plus the defaults, e.g. for ``--help``."""
        shown = {}
        for variant, value in self.defaults.items():
            text = 'none' if value is None else str(value)
            shown.setdefault(text, []).append(variant)
        if len(shown) == 1:
            default = next(iter(shown))
        else:
            default = ' or '.join(f'{text} ({", ".join(v)})'
                                  for text, v in shown.items())
        return f'{self.description} Defaults to {default}'


def layout_fields(method: Optional[str] = None) -> List[LayoutField]:
    """Every layout parameter of every registered reducer, merged by name.

    Args:
        method (str, optional): Only the parameters of this ``--method``.
            Defaults to None (all methods).

    Returns:
        list[LayoutField]: In declaration order, methods in registry order.

    Examples:
        >>> [f.name for f in layout_fields('pca')]
        ['n_components', 'seed']
        >>> field('n_iter').defaults['opentsne'], len(field('n_iter').defaults)
        (750, 5)
    """
    merged: Dict[str, dict] = {}
    for name in ([method] if method else reducer_names()):
        cls = reducer_class(name)
        for key, (row, defaults) in cls.declared().items():
            entry = merged.setdefault(key, dict(
                name=key, constraints=tuple(row), defaults={},
                methods=(), description=cls.descriptions.get(key, '')))
            entry['methods'] += (name, )
            entry['defaults'].update({variant or name: value
                                      for variant, value in defaults.items()})
            entry['description'] = entry['description'] or \
                cls.descriptions.get(key, '')
    return [LayoutField(**entry) for entry in merged.values()]


def field(name: str) -> LayoutField:
    """The :class:`LayoutField` called ``name``."""
    for item in layout_fields():
        if item.name == name:
            return item
    raise KeyError(name)


def add_layout_arguments(parser) -> list:
    """Add a flag for every layout parameter the reducers offer as one.

    The flags, their types, choices and help (defaults included) are read
    from the reducers' declarations (:func:`layout_fields`), one argument
    group per method; a reducer registered later gets its flags here
    without an edit. Every flag defaults to None
    ("not given"), so the config's block and then the reducer's defaults
    apply.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.

    Returns:
        list[str]: The parameter names added, e.g. ``['n_components',
        'backend', ...]``.

    Examples:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> 'perplexity' in add_layout_arguments(parser)
        True
    """
    groups, added = {}, []
    for item in layout_fields():
        if not item.is_flag:
            continue
        method = item.methods[0]
        if method not in groups:
            groups[method] = parser.add_argument_group(
                f'{reducer_class(method).name} settings',
                f"Unset flags fall back to the config's `{method} = "
                "dict(...)`, then to the defaults.")
        kwargs = dict(help=item.help().replace('%', '%%'))
        if item.choices is not None:
            kwargs['choices'] = list(item.choices)
        elif item.number_type is not None:
            kwargs['type'] = number_or(item.names, item.number_type)
        groups[method].add_argument('--' + item.name.replace('_', '-'),
                                    **kwargs)
        added.append(item.name)
    return added

