"""What every ``tools/*.py`` script shares: quiet imports, one-line errors."""
import sys
import warnings
from typing import Callable


def quiet_library_warnings() -> None:
    """Hide import-time notices that say nothing about the user's run.

    mmengine imports ``pkg_resources`` (deprecated by setuptools) and
    mmcv-lite announces the compiled ops it lacks, which t-SNE never uses.
    """
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
    warnings.filterwarnings('ignore',
                            message='Fail to import ``MultiScaleDeformable')


def number_or_auto(value: str):
    """argparse type: a number, or the string ``'auto'``."""
    import argparse
    if value == 'auto':
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or 'auto', got {value!r}") from None


def run(main: Callable[[], object]) -> None:
    """Call ``main``; a :class:`~tsneviz.errors.UserError` becomes one line.

    The line goes to stderr as ``error: ...`` and the exit status is 2, with
    no traceback; other exceptions are bugs and keep theirs.
    """
    from tsneviz.errors import UserError

    quiet_library_warnings()
    try:
        main()
    except UserError as err:
        message = ' '.join(str(err).split())
        print(f'error: {message}', file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print('error: interrupted', file=sys.stderr)
        sys.exit(130)
