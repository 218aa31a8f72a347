"""A run's file sent as it is: checked on the open file, streamed from it.

A name checked and then opened again by name can be raced: a link
flipped between the two makes the server send what the link points to
at that moment. So :func:`serve_file` opens the file once, with
:func:`~tsneviz.rundir.open_regular` (from the served folder down, no
link followed, a regular file only), and streams that open file: the
bytes sent are those of the file that passed the checks.
"""
import os
import os.path as osp
from email.utils import formatdate
from mimetypes import guess_type
from typing import Dict, Iterator, Optional

from fastapi.responses import StreamingResponse

from tsneviz.rundir import UnsafeFile, open_regular
from tsneviz.server.errors import Forbidden, NotFound
from tsneviz.server.security import contained

__all__ = ['serve_file']

# Bytes read from the file per chunk sent.
_CHUNK = 64 * 1024


def _chunks(f, size: int) -> Iterator[bytes]:
    # no more than the Content-Length sent, should the file grow meanwhile
    with f:
        left = size
        while left > 0:
            chunk = f.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def serve_file(path: str, folder: str, root: str,
               media_type: Optional[str] = None,
               headers: Optional[Dict[str, str]] = None,
               missing: Optional[str] = None) -> StreamingResponse:
    """The response that sends a file of a run directory.

    Args:
        path (str): The file, inside ``folder``.
        folder (str): The run directory: a link inside it may point to
            another of its files, never out of it.
        root (str): The folder the server serves (it holds ``folder``):
            the file is opened from it down with no link followed, so a
            link swapped in after the check is refused, not followed.
        media_type (str, optional): Defaults to the type of the name.
        headers (dict, optional): More response headers.
        missing (str, optional): The 404 message when there is no file.

    Returns:
        StreamingResponse: The file's bytes, with ``Content-Length``,
        ``Last-Modified`` and ``ETag`` from the open file.

    Raises:
        Forbidden: The file is outside ``folder``, reached through a
            link swapped in, or not a regular file.
        NotFound: There is no such file.

    Examples:
        >>> serve_file('/w/cfg/run/cfg.png', '/w/cfg/run', '/w')
        <starlette.responses.StreamingResponse object at 0x...>
    """
    name = osp.relpath(path, folder)
    if not contained(path, folder):
        raise Forbidden(f'{name!r} is outside the run directory')
    real = osp.realpath(path)
    if osp.isdir(real):
        raise NotFound(missing or f'no file {name!r} in the run')
    try:
        f = open_regular(real, inside=osp.realpath(root))
    except UnsafeFile:
        raise Forbidden(f'{name!r} is outside the run directory or not a '
                        'regular file') from None
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(missing or f'no file {name!r} in the run') from None
    try:
        st = os.fstat(f.fileno())
    except OSError:
        f.close()
        raise
    sent = {'Content-Length': str(st.st_size),
            'Last-Modified': formatdate(st.st_mtime, usegmt=True),
            'ETag': f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"',
            **(headers or {})}
    return StreamingResponse(
        _chunks(f, st.st_size), headers=sent,
        media_type=media_type or guess_type(name)[0] or
        'application/octet-stream')
