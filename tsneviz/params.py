"""Declarative parameter constraints, checked when a step is built.

Each step declares a table ``{name: [constraint, ...]}``; a value is valid
when it satisfies any constraint of its row (the scikit-learn convention).
A failure names the parameter, the bad value and what is accepted.
"""
import numbers
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from tsneviz.errors import UserError


@dataclass(frozen=True)
class Interval:
    """A number in ``[low, high]``; ``open_low`` excludes ``low``.

    Args:
        kind (type): ``numbers.Integral`` or ``numbers.Real``.
        low (float, optional): Lower bound. Defaults to None (unbounded).
        high (float, optional): Upper bound. Defaults to None (unbounded).
        open_low (bool): Exclude ``low`` itself. Defaults to False.
    """

    kind: type
    low: Optional[float] = None
    high: Optional[float] = None
    open_low: bool = False

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if self.low is not None and (value < self.low or
                                     (self.open_low and value == self.low)):
            return False
        return self.high is None or value <= self.high

    def __str__(self) -> str:
        kind = 'an integer' if self.kind is numbers.Integral else 'a number'
        low = '-inf' if self.low is None else f'{self.low:g}'
        high = 'inf' if self.high is None else f'{self.high:g}'
        return f"{kind} in {'(' if self.open_low else '['}{low}, {high}]"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: Sequence[Any]

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.values

    def __str__(self) -> str:
        return 'one of ' + ', '.join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Array:
    """A numpy array with ``ndim`` dimensions (e.g. a start layout)."""

    ndim: int = 2

    def accepts(self, value: Any) -> bool:
        import numpy as np
        return isinstance(value, np.ndarray) and value.ndim == self.ndim

    def __str__(self) -> str:
        return f'a {self.ndim}-D array'


def validate_params(params: dict, constraints: dict, owner: str) -> None:
    """Check ``params`` against a constraints table.

    Args:
        params (dict): Parameter values by name.
        constraints (dict): ``{name: [Interval | Options | None, ...]}``;
            ``None`` in a row allows the value ``None``.
        owner (str): What the parameters belong to, for the message.

    Raises:
        UserError: For an unknown name or a value no constraint accepts.

    Examples:
        >>> validate_params({'perplexity': 30.0},
        ...                 {'perplexity': [Interval(numbers.Real, 0,
        ...                                          open_low=True)]},
        ...                 'OpenTSNE')
    """
    for name, value in params.items():
        if name not in constraints:
            raise UserError(f'{owner}: unknown parameter {name!r}; valid '
                            f'parameters are {", ".join(sorted(constraints))}')
        row = constraints[name]
        if value is None and any(c is None for c in row):
            continue
        if not any(c is not None and c.accepts(value) for c in row):
            accepted = ' or '.join(str(c) if c is not None else 'None'
                                   for c in row)
            shown = repr(value) if len(repr(value)) < 60 else \
                type(value).__name__
            raise UserError(f'{owner}: {name}={shown} is invalid; it must '
                            f'be {accepted}')
