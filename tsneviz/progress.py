"""Progress bars (rich, as mmpretrain's tools use), on rank 0 only."""
import contextlib
from typing import Callable, Iterator

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextlib.contextmanager
def progress_bar(description: str, total: int,
                 enabled: bool = True) -> Iterator[Callable]:
    """A bar for ``total`` units of work; yields ``update(advance=..)``.

    Args:
        description (str): Text in front of the bar.
        total (int): Units of work.
        enabled (bool): Draw nothing when False (ranks other than 0).
            Defaults to True.

    Examples:
        >>> with progress_bar('Extracting', 100) as update:
        ...     update(advance=10)
    """
    if not enabled:
        yield lambda **kwargs: None
        return
    columns = (SpinnerColumn(), TextColumn('{task.description}'), BarColumn(),
               MofNCompleteColumn(), TextColumn('{task.fields[note]}'),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total, note='')

        def update(advance=None, completed=None, note=None):
            fields = {} if note is None else {'note': note}
            bar.update(task, advance=advance, completed=completed, **fields)

        yield update
