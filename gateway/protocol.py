"""The HTTP/1.1 protocol the gateway serves with: uvicorn's httptools one, with bounds on the head.

uvicorn bounds neither the size of a request head nor the time a client may take to send it or
its body: httptools buffers a header value whole (a 32 MB header costs hundreds of MB), and a
client sending a byte a second holds its connection as long as it likes. Here:

- the head (request line and headers) is fed to the parser only up to ``max_header_bytes``;
  a longer one gets 431 ``request.header_too_large`` and the connection is closed, before
  anything of the request reaches the app;
- a head not complete ``head_timeout_s`` after the connection opened (or the previous answer
  was sent) gets 408 ``request.head_timeout`` and is closed (silently when nothing came);
- a body not complete ``body_timeout_s`` after its head: reading stops, the app sees the body
  end and answers 408 ``request.body_timeout`` in the API's shape (audited, see
  ``body_timed_out``), and the connection is closed after that answer, or at once if the app
  answered already.

Each cut is counted (``Cuts``) and logged with the running count.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway import errors
from gateway.config import ServerConfig
from gateway.errors import Reason

__all__ = ["BODY_TIMEOUT", "Cuts", "GuardedHttpProtocol", "body_timed_out", "protocol_for"]

log = logging.getLogger("gateway.protocol")

# The key in the ASGI scope's state that marks a body cut by its timeout.
BODY_TIMEOUT = "gateway.body_timeout"
# A cut body's request gets this long to be answered before its connection is closed anyway.
_ANSWER_GRACE_S = 5.0


@dataclass(slots=True)
class Cuts:
    """Connections cut by a bound, by reason code, since the process started."""

    header_too_large: int = 0
    head_timeout: int = 0
    body_timeout: int = 0


def body_timed_out(scope: Any) -> bool:
    """Whether the body of the request in ``scope`` was cut by ``body_timeout_s``."""
    state = scope.get("state")
    return bool(state and state.get(BODY_TIMEOUT))


def protocol_for(bounds: ServerConfig, cuts: Cuts | None = None) -> Any:
    """What to pass as uvicorn's ``http``: the guarded protocol with ``bounds`` bound."""
    return functools.partial(GuardedHttpProtocol, bounds=bounds, cuts=cuts or Cuts())


def _raw_error(reason: Reason) -> bytes:
    body = orjson.dumps(
        {"error": {"type": "invalid_request_error", "code": reason.code, "message": reason.message}}
    )
    phrase = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[reason.status]
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (reason.status, phrase),
            b"content-type: application/json\r\nconnection: close\r\n",
            b"content-length: %d\r\n\r\n" % len(body),
            body,
        ]
    )


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head's size and the head's and body's time bounded."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        bounds: ServerConfig,
        cuts: Cuts,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._bounds = bounds
        self._cuts = cuts
        self._head_left: int | None = bounds.max_header_bytes  # None: not in a head
        self._head_seen = False  # a byte of the current head arrived
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._bounds.head_timeout_s, self._head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        left = self._head_left
        if left is None:
            super().data_received(data)
            return
        if self._timer is None:  # the next request on a kept-alive connection
            self._arm(self._bounds.head_timeout_s, self._head_timeout)
        self._head_seen = True
        if len(data) <= left:
            self._head_left = left - len(data)
            super().data_received(data)
            return
        self._head_left = 0
        super().data_received(data[:left])  # the parser never buffers more than the bound
        if self.transport.is_closing():
            return
        if self._head_left is not None:  # the head did not end within the bound
            self._cut(errors.REQUEST_HEADER_TOO_LARGE, "header_too_large")
            return
        super().data_received(data[left:])

    def on_headers_complete(self) -> None:
        self._head_left = None
        self._head_seen = False
        self._arm(self._bounds.body_timeout_s, self._body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._head_left = self._bounds.max_header_bytes  # what follows is the next head
        super().on_message_complete()

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cut(self, reason: Reason, count: str, answer: bool = True) -> None:
        setattr(self._cuts, count, getattr(self._cuts, count) + 1)
        log.warning(
            "connection from %s cut: %s (%d so far)",
            self.client[0] if self.client else "?",
            reason.code,
            getattr(self._cuts, count),
        )
        self._disarm()
        if not self.transport.is_closing():
            if answer:  # a connection that sent nothing is just closed
                self.transport.write(_raw_error(reason))
            self.transport.close()

    def _head_timeout(self) -> None:
        self._timer = None
        if self._head_left is None or self.transport.is_closing():
            return
        self._cut(errors.REQUEST_HEAD_TIMEOUT, "head_timeout", answer=self._head_seen)

    def _body_timeout(self) -> None:
        self._timer = None
        cycle = self.cycle
        if cycle is None or self.transport.is_closing():
            return
        self._cuts.body_timeout += 1
        log.warning(
            "connection from %s cut: %s (%d so far)",
            self.client[0] if self.client else "?",
            errors.REQUEST_BODY_TIMEOUT.code,
            self._cuts.body_timeout,
        )
        if cycle.response_started:  # answered without the body: nothing to tell the app
            self.transport.close()
            return
        # The app sees the body end, with the mark that says why, and answers 408 itself.
        self.scope["state"][BODY_TIMEOUT] = True
        self.flow.pause_reading()
        cycle.keep_alive = False
        cycle.more_body = False
        cycle.message_event.set()
        self._timer = self.loop.call_later(_ANSWER_GRACE_S, self.transport.close)
