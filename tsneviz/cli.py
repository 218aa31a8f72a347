"""What every ``tools/*.py`` script shares: quiet imports, one-line errors,
commands and links printed so that they can be pasted."""
import argparse
import os
import os.path as osp
import pathlib
import shlex
import sys
import warnings
from typing import Callable, Optional, Sequence

#: matplotlib backends that only write files (no window).
NON_INTERACTIVE_BACKENDS = ('agg', 'cairo', 'pdf', 'pgf', 'ps', 'svg',
                            'template')
# A file every tools folder holds: how a folder is known to be one.
_A_TOOL = 'vis_tsne.py'


def quiet_library_warnings() -> None:
    """Hide import-time notices that say nothing about the user's run.

    mmengine imports ``pkg_resources`` (deprecated by setuptools) and
    mmcv-lite announces the compiled ops it lacks, which t-SNE never uses.
    """
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
    warnings.filterwarnings('ignore',
                            message='Fail to import ``MultiScaleDeformable')


def number_or(names: Sequence[str], kind: type = float) -> Callable:
    """argparse type: a number of ``kind``, or one of ``names``.

    The one parser of such flags (``--learning-rate auto``,
    ``--dup-threshold auto``); the layout flags get theirs from their
    constraints (:mod:`tsneviz.reduction.fields`).

    Examples:
        >>> number_or(['auto'])('auto'), number_or(['auto'], int)('3')
        ('auto', 3)
    """
    if not names:
        return kind

    def parse(value: str):
        if value in names:
            return value
        try:
            return kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'expected a number or {" or ".join(map(repr, names))}, '
                f'got {value!r}') from None

    parse.__name__ = kind.__name__
    return parse


#: argparse type: a number, or ``'auto'``.
number_or_auto = number_or(['auto'])


def shell_command(*args) -> str:
    """A command line to print: each argument quoted for a POSIX shell.

    Examples:
        >>> shell_command('python', 'tools/serve.py', 'my runs')
        "python tools/serve.py 'my runs'"
    """
    return ' '.join(shlex.quote(str(a)) for a in args)


def tools_folder() -> Optional[str]:
    """The folder of the ``tools/*.py`` scripts, or None when unknown.

    The tools are scripts of a checkout, not modules of the installed
    package, so they are found beside the script that is running (a tool
    naming another tool), never relative to the package's own folder,
    which is elsewhere once installed.
    """
    script = sys.argv[0] if sys.argv and sys.argv[0] else ''
    folder = osp.dirname(osp.abspath(script)) if script else ''
    return folder if folder and osp.isfile(osp.join(folder, _A_TOOL)) \
        else None


def tool_command(tool: str, *args) -> Optional[str]:
    """``python tools/<tool> ARGS`` as :func:`shell_command` prints it.

    The script path is relative when the current folder contains it (the
    repository root), absolute otherwise, so the line runs from here.
    None when no tools folder is known (:func:`tools_folder`: the caller
    is not a tool, e.g. a notebook), so the caller can name the API.
    """
    folder = tools_folder()
    if folder is None:
        return None
    script = osp.join(folder, tool)
    relative = osp.relpath(script)
    return shell_command('python', script if relative.startswith('..')
                         else relative, *args)


def file_uri(path: str) -> str:
    """A ``file://`` URI of ``path`` (spaces and ``#`` percent-encoded).

    Examples:
        >>> file_uri('/runs/my run/index.html')
        'file:///runs/my%20run/index.html'
    """
    return pathlib.Path(osp.abspath(path)).as_uri()


def display_problem() -> Optional[str]:
    """Why a plot window cannot open here, or None when it can."""
    if sys.platform.startswith('linux') and not (
            os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        return 'there is no display (DISPLAY and WAYLAND_DISPLAY are unset)'
    import matplotlib
    backend = matplotlib.get_backend()
    if backend.lower() in NON_INTERACTIVE_BACKENDS:
        return f"matplotlib's backend {backend} cannot open a window"
    return None


def run(main: Callable[[], object]) -> None:
    """Call ``main``; a :class:`~tsneviz.errors.UserError` becomes one line.

    The line goes to stderr as ``error: ...`` and the exit status is 2, with
    no traceback; other exceptions are bugs and keep theirs. Ctrl-C ends
    with exit status 130 and one line: ``error: interrupted``, or what the
    ``KeyboardInterrupt`` says (an analysis step cut short names what
    finishes the run).
    """
    from tsneviz.errors import UserError

    quiet_library_warnings()
    try:
        main()
    except UserError as err:
        message = ' '.join(str(err).split())
        print(f'error: {message}', file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt as err:
        # an AnalysisInterrupted says what was kept and how to finish it
        message = ' '.join(str(err).split()) or 'interrupted'
        print(f'error: {message}', file=sys.stderr)
        sys.exit(130)
