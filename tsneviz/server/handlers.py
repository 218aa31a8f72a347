"""Error handlers: every error is JSON ``{"detail": "<one message>"}``.

A :class:`~tsneviz.errors.UserError` gets the status of its kind
(:func:`~tsneviz.server.errors.status_of`), a malformed request 422 with
FastAPI's errors on one line, anything else 500 (and a traceback in the
log). Every message passes through
:meth:`~tsneviz.server.context.ServerState.scrub`: it names no absolute
server path.
"""
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tsneviz.errors import UserError
from tsneviz.server.context import message
from tsneviz.server.errors import TooManyRequests, status_of
from tsneviz.server.jobs import UnknownJob
from tsneviz.server.runs import UnknownRun
from tsneviz.server.security import SANDBOX_POLICY, SECURITY_HEADERS

__all__ = ['add_error_handlers', 'validation_detail']

log = logging.getLogger('tsneviz.server')


def validation_detail(err: RequestValidationError) -> str:
    """FastAPI's list of errors as one line, e.g. ``body.k: ...``."""
    parts = []
    for e in err.errors():
        where = '.'.join(str(x) for x in e.get('loc', ()))
        if e.get('type') == 'json_invalid':
            ctx = (e.get('ctx') or {}).get('error', '')
            parts.append(f'malformed JSON body: {ctx}'.strip())
        else:
            parts.append(f'{where}: {e.get("msg")}')
    return '; '.join(parts) or 'invalid request'


def _scrub(request: Request, text: str) -> str:
    return request.app.state.server.scrub(text)


async def _user_error(request: Request, err: UserError):
    status = status_of(err, ((UnknownRun, 404), (UnknownJob, 404)))
    if status >= 500:
        log.error('%s', err)
    return JSONResponse({'detail': _scrub(request, message(err))}, status,
                        headers={'Retry-After': '30'}
                        if isinstance(err, TooManyRequests) else None)


async def _invalid(request: Request, err: RequestValidationError):
    return JSONResponse({'detail': _scrub(request, validation_detail(err))},
                        422)


async def _http_error(request: Request, err: StarletteHTTPException):
    return JSONResponse({'detail': _scrub(request, message(err.detail))},
                        err.status_code, headers=err.headers)


async def _bug(request: Request, err: Exception):
    log.exception('internal error on %s %s', request.method,
                  request.url.path)
    # sent past the middleware (Starlette's outermost layer calls this):
    # the headers SecurityHeaders adds to every other response are set here
    return JSONResponse({'detail': _scrub(
        request, f'internal error: {type(err).__name__}: {message(err)}')},
        500, headers={**SECURITY_HEADERS,
                      'Content-Security-Policy': SANDBOX_POLICY})


def add_error_handlers(app: FastAPI) -> None:
    """Install the handlers on ``app`` (whose ``state.server`` is set)."""
    app.add_exception_handler(UserError, _user_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _bug)
