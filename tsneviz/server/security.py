"""What keeps the server from reading, running or accepting too much.

- :func:`contained` / :func:`resolve_inside`: a path is used only when its
  resolved form (symlinks followed) lies inside an allowed folder; configs
  (which are Python), checkpoints (which are pickles) and images all go
  through it.
- :func:`real_folder`: the one way to a folder the server writes into
  (a run's ``selections/``, ``splits/``, ``placed/``, ...): no part of it
  below its base may be a symlink, so a planted link cannot send a write
  elsewhere.
- :class:`BodyLimit`: request bodies above a byte limit get 413 before the
  application reads them.
- :class:`TokenGuard`: with a token set, every request must carry it.
  :class:`BodyLimit` also answers 408 to a client that has not sent its
  whole body within a few seconds (a slow client holds a connection).
- :class:`TokenGuard`: with a token set, every request must carry it.
- :class:`LoopbackHostGuard`: without a token, only requests addressed to
  a loopback host name and the server's own port are served (DNS
  rebinding); :func:`parse_host` reads a ``Host`` header strictly.
- :class:`SecurityHeaders`: every response says ``nosniff`` and carries a
  Content-Security-Policy, so that a file of a run (written by anyone) can
  never script the API from the server's origin.
- :class:`OriginGuard`: a request that changes state (POST, DELETE, ...)
  sent by another web site's page gets 403 (cross-site request forgery).
- :class:`PathGuard`: a NUL byte in the URL path is a 400.
- :func:`strip_paths`: error messages name no absolute server path;
  :func:`relative_name`: neither do the paths in successful responses.
- :func:`is_loopback`: whether a ``--host`` is reachable only locally;
  :func:`weak_token`: why a ``--token`` is easy to guess, if it is.
"""
import asyncio
import errno
import hmac
import ipaddress
import json
import os
import os.path as osp
import re
from typing import Dict, Iterable, Optional, Tuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tsneviz.errors import UserError
from tsneviz.rundir import write_error

__all__ = ['Forbidden', 'contained', 'resolve_inside', 'real_folder',
           'is_loopback', 'weak_token', 'strip_paths', 'relative_name',
           'parse_host', 'BodyLimit', 'TokenGuard', 'LoopbackHostGuard',
           'OriginGuard', 'PathGuard', 'SecurityHeaders', 'TOKEN_COOKIE',
           'LOOPBACK_NAMES', 'MIN_TOKEN_LENGTH', 'SANDBOX_POLICY',
           'EXPLORER_POLICY', 'DOCS_POLICY', 'SECURITY_HEADERS']

#: Cookie set when a page is opened with ``?token=``: the page's own
#: relative requests (thumbnails, images) then carry the token without it
#: being written into every URL.
TOKEN_COOKIE = 'tsneviz_token'
#: Host names that reach only this machine.
LOOPBACK_NAMES = ('localhost', '127.0.0.1', '::1')
#: A shorter ``--token`` on a non-loopback host gets a warning.
MIN_TOKEN_LENGTH = 16
# ... and so does one of fewer distinct characters ('aaaaaaaaaaaaaaaa').
_MIN_TOKEN_SYMBOLS = 6

# A run directory may have been written by someone else, and every file in
# it is served from the server's own origin: an .html or .svg there would
# otherwise run its scripts with the right to call the API.
#: Content-Security-Policy of every response but the explorer page and the
#: API docs: no script runs in it, it has an origin of its own (so it can
#: reach no other page of the server), it loads nothing but images and
#: styles, and no page may frame it. Run files, reports (whose images are
#: data: URIs) and JSON read the same with it.
SANDBOX_POLICY = ("sandbox; default-src 'none'; img-src 'self' data:; "
                  "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
#: The explorer page's: its own scripts run (inline, and the run's
#: ``explorer/*.js``), but it may send no request of its own (fetch, XHR,
#: beacons, forms), start no worker (whose script would bring its own
#: policy) and be framed by no page. The page needs none of these: it is
#: made to work from file://, where they are blocked too; it only loads
#: scripts and images. So a page that someone else wrote into a run can
#: read what any page of the run can show, but cannot change anything.
EXPLORER_POLICY = ("connect-src 'none'; form-action 'none'; "
                   "worker-src 'none'; object-src 'none'; base-uri 'self'; "
                   "frame-ancestors 'none'")
#: The API docs' (Swagger UI, ReDoc: scripts from their CDN that call the
#: API): not framed, and opened in a browsing context group of their own
#: (``Cross-Origin-Opener-Policy``), so that no other page of the server
#: can open them and use their scripts.
DOCS_POLICY = "frame-ancestors 'none'"
#: Headers every response carries: no content-type sniffing (a .txt or
#: .json of a run is never run as HTML or script).
SECURITY_HEADERS = {'X-Content-Type-Options': 'nosniff'}


class Forbidden(UserError):
    """A request for something outside what the server may touch (403)."""


def contained(path: str, folder: str) -> bool:
    """Whether ``path`` resolves (symlinks followed) inside ``folder``.

    Examples:
        >>> contained('/data/a/../b.png', '/data')
        True
        >>> contained('/data/../etc/passwd', '/data')
        False
    """
    if '\0' in path or '\0' in folder:
        return False  # the OS cannot name it: not inside anything
    real = osp.realpath(path)
    base = osp.realpath(folder)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def resolve_inside(name: str, folder: Optional[str], what: str,
                   option: str) -> str:
    """A file named relative to an allowed folder, resolved; else 403/400.

    The name must be relative, and its resolved path (symlinks followed)
    must stay inside ``folder``: a config is Python that the server would
    run and a checkpoint a pickle it would load, so neither may come from
    anywhere else.

    Args:
        name (str): Name relative to ``folder``, e.g. ``'digits/a.py'``.
        folder (str | None): The allowed folder; None means none allowed.
        what (str): ``'config'`` or ``'checkpoint'``, for messages.
        option (str): The server option that sets ``folder``.

    Returns:
        str: The resolved absolute path of an existing file.

    Raises:
        Forbidden: No folder was given, or the name leaves it.
        UserError: The file does not exist.

    Examples:
        >>> resolve_inside('digits/a.py', 'configs', 'config',
        ...                '--configs-dir')
        '/work/main/configs/digits/a.py'
    """
    if folder is None:
        raise Forbidden(f'{what}s are disabled: the server was started '
                        f'without {option}')
    if not name or '\0' in name:
        raise UserError(f'empty or invalid {what} name')
    if osp.isabs(name) or name.startswith(('/', '\\', '~')):
        raise Forbidden(f'{what} {name!r} must be a name relative to the '
                        f'{what}s directory ({option}), not an absolute path')
    path = osp.join(folder, name)
    if not contained(path, folder):
        raise Forbidden(f'{what} {name!r} is outside the {what}s directory '
                        f'({option}); only files inside it are allowed')
    real = osp.realpath(path)
    if not osp.isfile(real):
        raise UserError(f'{what} not found: {name} (relative to the {what}s '
                        f'directory {option})')
    return real


def real_folder(base: str, name: str, create: bool = True,
                inside: str = 'the run') -> str:
    """The folder ``name`` below ``base``, refused when it leaves ``base``.

    Every server write into a run (or into the served root) goes through
    here. A run may have been written by someone else, who can plant a
    symlink as one of its folders (``selections -> /home/me/.ssh``); so
    each part of ``name`` is opened relative to the one before it with
    ``O_NOFOLLOW`` (the ``openat`` walk), and a symlink, or a file where a
    folder should be, is refused. A missing part is made (``mkdir``, then
    opened the same way: a link planted in between is refused too).
    ``base`` itself is taken as given: the run folder, found by discovery,
    which follows no symlinks.

    Args:
        base (str): The folder written into, e.g. a run directory.
        name (str): Relative folder, ``/``-separated (``'placed/a.images'``);
            made of names the server chose or checked, never ``..``.
        create (bool): Make missing folders. Defaults to True; False
            returns the path of a missing folder without making it.
        inside (str): What ``base`` is, for messages. Defaults to
            ``'the run'``.

    Returns:
        str: ``osp.join(base, name)``.

    Raises:
        Forbidden: A part of ``name`` is a symlink or not a folder.
        UserError: A folder cannot be made (a read-only run, a full
            disk).
        OSError: ``base`` cannot be opened.

    Examples:
        >>> real_folder(run_dir, 'selections')
        'work_dirs/digits/tsne_20261123_144017/selections'
        >>> os.symlink('/tmp', run_dir + '/splits')
        >>> real_folder(run_dir, 'splits')
        Traceback (most recent call last):
        tsneviz.server.security.Forbidden: splits in the run is a symlink ...
    """
    parts = name.split('/')
    if any(p in ('', '.', '..') for p in parts):
        raise ValueError(f'not a plain relative folder name: {name!r}')
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | \
        getattr(os, 'O_CLOEXEC', 0)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY |
                 getattr(os, 'O_CLOEXEC', 0))
    try:
        for i, part in enumerate(parts):
            try:
                try:
                    child = os.open(part, flags, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        break
                    try:
                        os.mkdir(part, dir_fd=fd)
                    except FileExistsError:
                        pass  # made meanwhile: checked just below
                    child = os.open(part, flags, dir_fd=fd)
            except OSError as err:
                where = '/'.join(parts[:i + 1])
                if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                    # a read-only run or a full disk: one line, not a 500
                    raise (write_error(err, osp.join(base, where)) or
                           err) from None
                raise Forbidden(
                    f'{where} in {inside} is a symlink or a file, not a '
                    'folder: the server writes only into real folders '
                    f'inside {inside}; remove {where} (or make it a '
                    'folder) and try again') from None
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    return osp.join(base, *parts)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` is reachable only from this machine.

    Examples:
        >>> is_loopback('127.0.0.1'), is_loopback('0.0.0.0')
        (True, False)
    """
    host = host.strip('[]')
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: may resolve to anything


# A Host header (RFC 9110 7.2): a bracketed IPv6 literal or a host name /
# IPv4 address, then an optional port. Nothing else: '[::1]evil.com' and
# 'user@localhost' are no hosts.
_HOST = re.compile(r'(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]'
                   r'|(?P<name>[A-Za-z0-9._-]+))'
                   r'(?::(?P<port>[0-9]{1,5}))?')


def parse_host(value: str) -> Optional[Tuple[str, Optional[int]]]:
    """``(host, port)`` of a ``Host`` header, or None when it is not one.

    Strict: a bracketed IPv6 literal or a name, then ``:port`` or nothing.

    Examples:
        >>> parse_host('[::1]:8000'), parse_host('localhost')
        (('::1', 8000), ('localhost', None))
        >>> parse_host('[::1]evil.com') is None
        True
    """
    match = _HOST.fullmatch(value)
    if match is None:
        return None
    port = match.group('port')
    if port is not None and not 0 < int(port) < 65536:
        return None
    return (match.group('ip6') or match.group('name'),
            None if port is None else int(port))


def weak_token(token: str) -> Optional[str]:
    """Why ``token`` is easy to guess, or None when it is not.

    Examples:
        >>> weak_token('abc')
        'it has 3 characters (use at least 16)'
        >>> weak_token('9f86d081884c7d659a2feaa0c55ad015') is None
        True
    """
    if len(token) < MIN_TOKEN_LENGTH:
        return (f'it has {len(token)} characters (use at least '
                f'{MIN_TOKEN_LENGTH})')
    if len(set(token)) < _MIN_TOKEN_SYMBOLS:
        return (f'it uses only {len(set(token))} different characters')
    return None


# The first folder of the file system's top level: a word like that after
# a '/' starts an absolute path, while '/api/runs' (no /api folder) stays.
def _top_level() -> str:
    try:
        names = [n for n in os.listdir('/') if re.fullmatch(r'[\w.-]+', n)]
    except OSError:
        names = []
    return '|'.join(re.escape(n) for n in sorted(names, key=len,
                                                   reverse=True)) or '$^'


_ABS_PATH = re.compile(r"(?<![\w.~/-])/(?:%s)(?:/[^\s'\"`,;()<>\[\]]*)*"
                       % _top_level())


def strip_paths(text: str, folders: Dict[str, str]) -> str:
    """``text`` with absolute server paths replaced by short names.

    A client learns nothing about the server's file system from an error:
    the server's own folders become their labels (``<root>``,
    ``<data-dir>``, ...) and any other absolute path its last component.

    Args:
        text (str): A message.
        folders (dict[str, str]): Folder -> label; both the path as given
            and its resolved form are replaced.

    Examples:
        >>> strip_paths('no file /srv/data/a/b.png', {'/srv/data': '<d>'})
        'no file <d>/a/b.png'
        >>> strip_paths('cannot read /etc/x/y.py: bad', {})
        'cannot read …/y.py: bad'
    """
    pairs = {}
    for folder, label in folders.items():
        if folder:
            for form in (osp.abspath(folder), osp.realpath(folder)):
                pairs[form.rstrip(os.sep) or os.sep] = label
    for folder in sorted(pairs, key=len, reverse=True):
        if folder != os.sep:
            text = re.sub(re.escape(folder) + r'(?=/|\b|$)', pairs[folder],
                          text)

    def last(match):
        name = match.group(0).rstrip('/').rsplit('/', 1)[-1]
        return f'…/{name}' if name else '…'

    return _ABS_PATH.sub(last, text)


def relative_name(path: Optional[str], folder: Optional[str]) -> \
        Optional[str]:
    """``path`` as a client may see it: no absolute server path.

    A path inside ``folder`` becomes relative to it (POSIX separators,
    ``'.'`` for the folder itself); any other absolute path becomes
    ``…/<its last component>``, as :func:`strip_paths` writes it. The test
    is on the text (no file is touched): it names, it grants nothing.

    Args:
        path (str, optional): A path; None and '' are returned unchanged.
        folder (str, optional): The folder it is told relative to.

    Examples:
        >>> relative_name('/data/digits/val/0/1.png', '/data/digits')
        'val/0/1.png'
        >>> relative_name('/etc/x/y.py', '/data/digits')
        '…/y.py'
    """
    if not path:
        return path
    norm = osp.normpath(path)
    if folder and osp.isabs(norm):
        rel = osp.relpath(norm, osp.normpath(folder))
        if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
            return rel.replace(os.sep, '/')
    elif not osp.isabs(norm) and norm != os.pardir and \
            not norm.startswith(os.pardir + os.sep):
        return norm.replace(os.sep, '/')  # relative already: nothing shown
    name = norm.rstrip(os.sep).rsplit(os.sep, 1)[-1]
    return f'…/{name}' if name else '…'


async def _send_json(send, status: int, detail: str, headers=()) -> None:
    body = json.dumps({'detail': detail}).encode()
    await send({'type': 'http.response.start', 'status': status,
                'headers': [(b'content-type', b'application/json'),
                            (b'content-length', str(len(body)).encode()),
                            *headers]})
    await send({'type': 'http.response.body', 'body': body})


class BodyLimit:
    """ASGI middleware: bodies over ``max_bytes`` get 413, unread by the app.

    The body is read here in full (it is at most ``max_bytes``) and replayed
    to the application, so a chunked upload without ``Content-Length`` is
    cut off as soon as it passes the limit rather than after the
    application buffered it. A body not complete ``timeout`` seconds after
    the headers gets 408 and the connection is closed: a client trickling
    its body would otherwise hold a connection (and a task) forever.

    Args:
        app: The ASGI application.
        max_bytes (int): The largest body accepted.
        timeout (float): Seconds the whole body may take. Defaults to 10.
    """

    def __init__(self, app, max_bytes: int, timeout: float = 10.0):
        self.app = app
        self.max_bytes = int(max_bytes)
        self.timeout = float(timeout)

    async def __call__(self, scope, receive, send):
        if scope['type'] != 'http':
            return await self.app(scope, receive, send)
        too_big = (f'request body too large: the limit is {self.max_bytes} '
                   'bytes')
        for name, value in scope.get('headers', ()):
            if name == b'content-length':
                try:
                    size = int(value)
                except ValueError:
                    return await _send_json(send, 400,
                                            'invalid Content-Length')
                if size > self.max_bytes:
                    return await _send_json(send, 413, too_big)
        chunks, size, more = [], 0, True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while more:
            try:
                message = await asyncio.wait_for(
                    receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                # 'connection: close' makes uvicorn drop the connection
                # instead of waiting for the rest of the body
                return await _send_json(
                    send, 408, 'request body not received within '
                    f'{self.timeout:g} s', [(b'connection', b'close')])
            if message['type'] == 'http.disconnect':
                return
            chunk = message.get('body', b'')
            size += len(chunk)
            if size > self.max_bytes:
                return await _send_json(send, 413, too_big)
            chunks.append(chunk)
            more = message.get('more_body', False)
        body = b''.join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {'type': 'http.request', 'body': body,
                        'more_body': False}
            return await receive()  # waits for the disconnect

        await self.app(scope, replay, send)


class TokenGuard:
    """ASGI middleware: every request must carry the token, when one is set.

    Accepted: ``Authorization: Bearer <token>`` on any request; on GET/HEAD
    also the ``tsneviz_token`` cookie, and ``?token=`` on pages (paths
    outside ``/api/``), which then sets the cookie so the page's relative
    requests are authorised too. The cookie is not accepted on POST: a
    cross-site form could otherwise ride on it (it is also
    ``SameSite=Strict``). A token in the query string of an API call is
    refused: it ends up in logs and browser history.

    Args:
        app: The ASGI application.
        token (str | None): The token; None lets everything through.
        open_paths (Iterable[str]): Paths served without a token.
    """

    def __init__(self, app, token: Optional[str],
                 open_paths: Iterable[str] = ()):
        self.app = app
        self.token = token.encode('utf-8') if token else None
        self.open_paths = set(open_paths)

    def _matches(self, value: Optional[bytes]) -> bool:
        # compare_digest: no timing hint about how much of a guess matched
        return value is not None and hmac.compare_digest(value, self.token)

    async def __call__(self, scope, receive, send):
        if scope['type'] != 'http' or self.token is None or \
                scope['path'] in self.open_paths:
            return await self.app(scope, receive, send)
        headers = dict(scope.get('headers', ()))
        method = scope['method']
        safe = method in ('GET', 'HEAD')
        auth = headers.get(b'authorization', b'')
        bearer = auth[7:].strip() if auth[:7].lower() == b'bearer ' else None
        if self._matches(bearer):
            return await self.app(scope, receive, send)
        cookie = _cookie(headers.get(b'cookie', b''))
        if safe and cookie is not None and \
                self._matches(unquote(cookie.decode('latin-1')).encode(
                    'utf-8')):
            return await self.app(scope, receive, send)
        query = parse_qs(scope.get('query_string', b'').decode('latin-1'))
        given = (query.get('token') or [None])[0]
        if safe and given is not None and \
                not scope['path'].startswith('/api/') and \
                self._matches(given.encode('utf-8')):
            # quoted: a token may hold characters a cookie value may not
            value = quote(given, safe='')
            set_cookie = (f'{TOKEN_COOKIE}={value}; Path=/; HttpOnly; '
                          'SameSite=Strict').encode('latin-1')

            async def send_with_cookie(message):
                if message['type'] == 'http.response.start':
                    message = dict(message)
                    message['headers'] = list(message.get('headers', ())) + \
                        [(b'set-cookie', set_cookie)]
                await send(message)

            return await self.app(scope, receive, send_with_cookie)
        detail = ('missing or wrong token: send "Authorization: Bearer '
                  '<token>"' + ('' if scope['path'].startswith('/api/')
                                else ' or open the page with ?token=<token>'))
        await _send_json(send, 401, detail,
                         [(b'www-authenticate', b'Bearer')])


class LoopbackHostGuard:
    """ASGI middleware: serve only requests whose ``Host`` is this server.

    Used when no token is set (the server then listens on loopback only).
    A web page from elsewhere can still make the browser talk to
    127.0.0.1 through a DNS name it re-points there (DNS rebinding); such
    requests carry the attacker's host name, so they are refused. The
    ``Host`` must be a loopback name or address (read strictly, by
    :func:`parse_host`) and, when it names a port, the port the request
    came in on. One without a port passes: a browser always names the
    port unless it is the scheme's default, so only other clients (curl,
    scripts) leave it out on any other.
    """

    def __init__(self, app):
        self.app = app

    def _accepted(self, scope, host: str) -> bool:
        parsed = parse_host(host)
        if parsed is None:
            return False
        name, port = parsed
        if name.lower() not in LOOPBACK_NAMES and not is_loopback(name):
            return False
        server = scope.get('server')
        if port is None or not server or server[1] is None:
            return True  # no port named, or none to compare (Unix socket)
        return port == server[1]

    async def __call__(self, scope, receive, send):
        if scope['type'] != 'http':
            return await self.app(scope, receive, send)
        host = dict(scope.get('headers', ())).get(b'host', b'').decode(
            'latin-1')
        if self._accepted(scope, host):
            return await self.app(scope, receive, send)
        server = scope.get('server')
        port = f' on port {server[1]}' if server and server[1] else ''
        await _send_json(send, 421, f'host {host!r} is not served: without '
                         'a token the server answers only requests to '
                         f'localhost / 127.0.0.1 / [::1]{port}')


class OriginGuard:
    """ASGI middleware: state-changing requests from other sites get 403.

    A web page on any site can make the browser POST to this server (a
    form, or ``fetch`` with ``mode: 'no-cors'``); the browser says who
    sent it. A request other than GET/HEAD/OPTIONS is refused when its
    ``Sec-Fetch-Site`` is ``cross-site`` or ``same-site``, or when it has
    an ``Origin`` whose host (and port) is not the ``Host`` it was sent
    to (``Origin: null`` included). Requests without either header (curl,
    scripts, old browsers on same-origin requests) pass.
    """

    SAFE = frozenset({'GET', 'HEAD', 'OPTIONS'})

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope['type'] != 'http' or scope['method'] in self.SAFE:
            return await self.app(scope, receive, send)
        headers = dict(scope.get('headers', ()))
        site = headers.get(b'sec-fetch-site', b'').decode('latin-1').lower()
        origin = headers.get(b'origin')
        host = headers.get(b'host', b'').decode('latin-1').lower()
        refused = site in ('cross-site', 'same-site')
        if origin is not None and not refused:
            text = origin.decode('latin-1').strip()
            refused = text.lower() == 'null' or \
                urlsplit(text).netloc.lower() != host
        if refused:
            return await _send_json(
                send, 403, f'{scope["method"]} from another site is '
                'refused (Origin / Sec-Fetch-Site); send it from this '
                'server\'s own pages or without a browser')
        return await self.app(scope, receive, send)


class PathGuard:
    """ASGI middleware: a URL path with a NUL byte is a 400.

    No file name holds one, and the OS calls would raise on it.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope['type'] == 'http' and '\0' in scope.get('path', ''):
            return await _send_json(send, 400, 'invalid URL: a NUL byte in '
                                    'the path')
        return await self.app(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` and a policy on every
    response.

    A response that sets its own ``Content-Security-Policy`` (the explorer
    page: :data:`EXPLORER_POLICY`) keeps it; the paths in ``docs`` get
    :data:`DOCS_POLICY` and ``Cross-Origin-Opener-Policy: same-origin``;
    every other response gets :data:`SANDBOX_POLICY`.

    Args:
        app: The ASGI application.
        docs (Iterable[str]): Paths of the API docs pages.
    """

    def __init__(self, app, docs: Iterable[str] = ()):
        self.app = app
        self.docs = {d for d in docs if d}
        self.always = [(k.lower().encode('latin-1'), v.encode('latin-1'))
                       for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope, receive, send):
        if scope['type'] != 'http':
            return await self.app(scope, receive, send)
        if scope['path'] in self.docs:
            extra = [(b'content-security-policy', DOCS_POLICY.encode()),
                     (b'cross-origin-opener-policy', b'same-origin')]
        else:
            extra = [(b'content-security-policy', SANDBOX_POLICY.encode())]

        async def send_with_headers(message):
            if message['type'] == 'http.response.start':
                headers = list(message.get('headers', ()))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in self.always + extra
                            if k not in names]
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookie(header: bytes) -> Optional[bytes]:
    for part in header.split(b';'):
        name, _, value = part.strip().partition(b'=')
        if name == TOKEN_COOKIE.encode():
            return value
    return None
