"""Errors a request can end in, each with its HTTP status.

Every one is a :class:`~tsneviz.errors.UserError`: its message says what
was wrong and what to do, and the app sends it as ``{"detail": ...}``.
"""
from tsneviz.errors import UserError
from tsneviz.server.security import Forbidden

__all__ = ['NotFound', 'Unprocessable', 'Conflict', 'TooManyRequests',
           'BrokenRun', 'Forbidden', 'status_of']


class NotFound(UserError):
    """Something named in the URL does not exist (404)."""


class Unprocessable(UserError):
    """A well-formed request with an impossible value, e.g. k (422)."""


class Conflict(UserError):
    """The request does not fit the current state, e.g. a full run (409)."""


class TooManyRequests(UserError):
    """A queue (jobs, placements) is full: try again later (429)."""


class BrokenRun(UserError):
    """A run directory whose files cannot be read (409, with the reason).

    Not a 5xx: the server works, the run's files are in a state no request
    can be served from until they are written again (a hostile or damaged
    run must not look like a server fault).
    """


def status_of(err: UserError, extra=()) -> int:
    """The HTTP status of an error; ``extra``: more (type, status) pairs.

    Examples:
        >>> status_of(NotFound('x'))
        404
    """
    table = (*extra, (NotFound, 404), (Forbidden, 403),
             (Unprocessable, 422), (Conflict, 409), (TooManyRequests, 429),
             (BrokenRun, 409), (UserError, 400))
    return next(code for kind, code in table if isinstance(err, kind))
