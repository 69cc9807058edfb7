"""The local API's HTTP connections, bounded in time: a client that trickles a request (the
"slowloris" pattern: partial headers, a byte at a time) or opens a connection and sends
nothing is cut off, so it cannot hold the server's connections open for ever.

uvicorn bounds idle keep-alive connections after a response (``timeout_keep_alive``) but not
the time to receive a request; 100 trickling connections were all still open after 20 s. Here
each connection must deliver a whole request, headers and body, within
:data:`REQUEST_READ_TIMEOUT_S` of being opened or of its previous response; otherwise it is
closed. Requests to this API are small JSON documents from this machine, so the bound is never
reached by a real client.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["REQUEST_READ_TIMEOUT_S", "bounded_protocol"]

REQUEST_READ_TIMEOUT_S = 10.0
IDLE_KEEP_ALIVE_S = 5

log = logging.getLogger(__name__)


def bounded_protocol(read_timeout_s: float = REQUEST_READ_TIMEOUT_S) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline for receiving each request."""

    class BoundedH11Protocol(H11Protocol):
        _read_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE and self.conn.their_state is not (
                h11.SEND_BODY
            ):
                self._disarm()  # the whole request is in (or the connection is ending)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection gets the same bound

        def _arm(self) -> None:
            self._disarm()
            self._read_deadline = self.loop.call_later(read_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._read_deadline is not None:
                self._read_deadline.cancel()
                self._read_deadline = None

        def _too_slow(self) -> None:
            self._read_deadline = None
            if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not (
                self.transport.is_closing()
            ):
                log.debug("closing a connection that did not send its request in time")
                self.transport.close()

    return BoundedH11Protocol
