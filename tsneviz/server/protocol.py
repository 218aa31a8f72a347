"""Connections that cannot hold the server: a deadline on request heads.

uvicorn closes a connection left idle after a response
(``timeout_keep_alive``), but not one that never sends a request, nor one
that trickles its header a byte at a time (every byte restarts the
keep-alive timer): 300 such sockets held every slot of
``limit_concurrency``, and every other client got 503, for as long as
they stayed. ASGI middleware cannot help, since it runs only once a
request head is complete.

:class:`HeaderDeadlineProtocol` is uvicorn's h11 protocol with two rules on
top, both about connections that have no request in progress (h11's
``their_state`` is ``IDLE``: nothing received yet, or a partial head):

- such a connection is closed ``header_timeout`` seconds after it opened or
  after its last response, whatever it trickled in between;
- when a new connection brings the server to ``limit_concurrency``
  connections, the oldest such connections are closed to make room, as
  nginx drains idle keep-alive connections, so a flood of idle sockets
  cannot turn the next real request away. Only connections with a request
  in progress count against the limit then (503 beyond it).

The body of a request is bounded by the application
(:class:`~tsneviz.server.security.BodyLimit`), its head by h11's
``max_incomplete_event_size`` (16 kB by default).
"""
import asyncio
from typing import Optional

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ['HEADER_TIMEOUT_S', 'HeaderDeadlineProtocol', 'header_deadline']

#: Default seconds a connection may take to send a complete request head,
#: from when it opened or got its last response. Loopback and LAN clients
#: send a head at once; nginx allows 60 s over the internet.
HEADER_TIMEOUT_S = 10.0


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that send no request.

    Pass a subclass with its ``header_timeout`` (:func:`header_deadline`) as
    ``uvicorn.run(..., http=...)``.
    """

    #: Seconds a complete request head may take (see the module's rules).
    header_timeout: float = HEADER_TIMEOUT_S

    _deadline: Optional[asyncio.TimerHandle] = None
    _since: float = 0.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()
        limit = self.limit_concurrency
        if limit is not None and len(self.connections) >= limit:
            self._make_room(len(self.connections) - limit + 1)

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request head gets a deadline of its own

    def waiting_for_request(self) -> bool:
        """True while no request is in progress on this connection."""
        return self.conn.their_state is h11.IDLE and \
            self.conn.our_state is h11.IDLE and \
            not self.transport.is_closing()

    def _arm(self) -> None:
        self._disarm()
        self._since = self.loop.time()
        self._deadline = self.loop.call_later(self.header_timeout,
                                              self._header_overdue)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _header_overdue(self) -> None:
        self._deadline = None
        if self.waiting_for_request():
            self.logger.debug('closing a connection that sent no complete '
                              'request within %g s', self.header_timeout)
            self._close()
        # else a request is in progress: re-armed once it is answered

    def _close(self) -> None:
        try:
            self.conn.send(h11.ConnectionClosed())
        except h11.LocalProtocolError:
            pass
        self.transport.close()
        # off the count at once: connection_lost comes a loop turn later
        self.connections.discard(self)

    def _make_room(self, count: int) -> None:
        idle = sorted((c for c in self.connections
                       if c is not self and
                       isinstance(c, HeaderDeadlineProtocol) and
                       c.waiting_for_request()), key=lambda c: c._since)
        for other in idle[:count]:
            other._close()


def header_deadline(seconds: float = HEADER_TIMEOUT_S) -> type:
    """The protocol class to give ``uvicorn.run(http=...)``.

    Args:
        seconds (float): Seconds a connection may take to send a complete
            request head. Defaults to :data:`HEADER_TIMEOUT_S`.

    Examples:
        >>> uvicorn.run(app, http=header_deadline(10), limit_concurrency=256)
    """
    return type('HeaderDeadlineProtocol', (HeaderDeadlineProtocol,),
                {'header_timeout': float(seconds)})
