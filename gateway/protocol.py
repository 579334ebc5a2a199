"""The HTTP/1.1 protocol `gateway serve` runs: httptools on asyncio, one ASGI task per request.

uvicorn's ``Server`` still runs everything around it (sockets, signals, lifespan, the ``date``
header, graceful shutdown, workers); this replaces its httptools protocol, which cost about a
tenth of the default deployment's CPU per request (bench/server.py: 26 µs at c=16, against 7
for a protocol answering canned bytes): a head and a body written with two system calls, two
regular expressions per response header, and per request an ``asyncio.Event``, a
``RequestResponseCycle`` and three timers armed and cancelled. Here a whole response is one
write, the events a stream sends in one turn of the loop are one write (gateway/exchange.py),
the headers are checked with one expression each for names and values, a request is one
``Exchange``, and one lazily re-armed timer per connection bounds its phases (18 µs at c=16).

What uvicorn's protocol does and the gateway relies on is kept: keep-alive and its timeout,
pipelined requests (answered in order, reading paused meanwhile), flow control both ways,
``100 Continue``, ``HEAD``, chunked bodies both ways, ``connection: close``, 400 on a request
httptools cannot parse, ``limit_concurrency``, graceful shutdown (an idle connection is closed,
a busy one after its answer; the server waits for the tasks) and ``http.disconnect``. Not
kept: WebSocket upgrades (the gateway serves none; an upgrade request is served as plain
HTTP, as uvicorn does without a WebSocket library) and uvicorn's access log (off in
`gateway serve`: the gateway writes its own).

Bounds on what one client may make the gateway hold (gateway.yaml ``server``), which uvicorn
has none of: httptools buffers a header value whole (a 32 MB header costs hundreds of MB), and
a client sending a byte a second holds its connection as long as it likes. Here:

- the head (request line and headers) is fed to the parser only up to ``max_header_bytes``;
  a longer one gets 431 ``request.header_too_large`` and the connection is closed, before
  anything of the request reaches the app;
- a head not complete ``head_timeout_s`` after the connection opened (on a kept-alive
  connection, after its first byte: an idle one is closed after uvicorn's
  ``timeout_keep_alive``) gets 408 ``request.head_timeout`` and is closed (silently when
  nothing came);
- a body not complete ``body_timeout_s`` after its head: reading stops, the app sees the body
  end and answers 408 ``request.body_timeout`` in the API's shape (audited, see
  ``body_timed_out``), and the connection is closed after that answer, or at once if the app
  answered already.

Each cut is counted (``Cuts``) and logged with the running count.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import urllib.parse
from collections import deque
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.utils import get_local_addr, get_remote_addr, is_ssl
from uvicorn.server import ServerState

from gateway import errors
from gateway.config import ServerConfig
from gateway.errors import Reason
from gateway.exchange import HIGH_WATER, Exchange

__all__ = ["BODY_TIMEOUT", "Cuts", "HttpProtocol", "body_timed_out", "protocol_for"]

log = logging.getLogger("gateway.protocol")

# The key in the ASGI scope's state that marks a body cut by its timeout.
BODY_TIMEOUT = "gateway.body_timeout"
# A cut body's request gets this long to be answered before its connection is closed anyway.
_ANSWER_GRACE_S = 5.0
# What the connection's one timer bounds: the head, the body, the wait for the next request.
_HEAD, _BODY, _IDLE = 1, 2, 3
_ASGI = {"version": "3.0", "spec_version": "2.3"}


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
    """What to pass as uvicorn's ``http``: the gateway's protocol with ``bounds`` bound."""
    return functools.partial(HttpProtocol, bounds=bounds, cuts=cuts or Cuts())


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


class HttpProtocol(asyncio.Protocol):
    """One client connection: its requests parsed, bounded, and served in order."""

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
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.app_state = app_state
        self._root_path = config.root_path
        self._limit_concurrency = config.limit_concurrency
        self._fresh_context = bool(getattr(config, "reset_contextvars", False))
        self._keep_alive_s = config.timeout_keep_alive
        self._bounds = bounds
        self._cuts = cuts
        self.parser = httptools.HttpRequestParser(self)
        # Answer a request even if the client closes right after sending it (uvicorn does too).
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        # The request being read, the one being answered, and those waiting behind it.
        self.exchange: Exchange | None = None
        self._answering: Exchange | None = None
        self._waiting: deque[tuple[Exchange, Any]] = deque()
        # The head being read.
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._continue = False
        self._head_left: int | None = bounds.max_header_bytes  # None: not in a head
        self._head_seen = False  # a byte of the current head arrived
        # Flow control.
        self.read_paused = False
        self.write_paused = False
        self._drained: list[asyncio.Future[None]] = []  # senders waiting for resume_writing
        # One timer: it fires at ``_timer_at``, the phase's ``_deadline`` may have moved later.
        self._phase = 0
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # -- the transport's calls

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.server_state.connections.add(self)  # type: ignore[arg-type]
        self.server = get_local_addr(transport)
        self.client = get_remote_addr(transport)
        if is_ssl(transport):
            self.scheme = "https"
        self._bound(_HEAD, self._bounds.head_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        for exchange in (self._answering, self.exchange):
            if exchange is not None and not exchange.complete and not exchange.disconnected:
                exchange.disconnected = True  # (the one being read is often the one answered)
                exchange.wake()
                if exchange.on_disconnect is not None:
                    exchange.on_disconnect()
        self.resume_writing()
        self._phase = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if exc is None:
            self.transport.close()
        self.parser = None  # type: ignore[assignment]

    def eof_received(self) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        left = self._head_left
        if left is None:  # a body
            self._feed(data)
            return
        if self._phase != _HEAD:  # the first bytes of a request on a kept-alive connection
            self._bound(_HEAD, self._bounds.head_timeout_s)
        self._head_seen = True
        if len(data) <= left:
            self._head_left = left - len(data)
            self._feed(data)
            return
        self._head_left = 0
        self._feed(data[:left])  # the parser never buffers more than the bound
        if self.transport.is_closing():
            return
        if self._head_left is not None:  # the head did not end within the bound
            self._cut(errors.REQUEST_HEADER_TOO_LARGE, "header_too_large")
            return
        self._feed(data[left:])

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        drained, self._drained = self._drained, []
        for waiter in drained:
            if not waiter.done():
                waiter.set_result(None)

    # -- the server's call

    def shutdown(self) -> None:
        """Graceful shutdown: an idle connection is closed, a busy one after its answer."""
        exchange = self.exchange
        if exchange is None or exchange.complete:
            self.transport.close()
        else:
            exchange.keep_alive = False

    # -- the parser's calls

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self._continue = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._head_left = None
        self._head_seen = False
        self._bound(_BODY, self._bounds.body_timeout_s)
        parser = self.parser
        version = parser.get_http_version()
        if parser.should_upgrade():
            log.warning("Unsupported upgrade request: served as plain HTTP.")
        url = httptools.parse_url(self._url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        root = self._root_path
        scope = {
            "type": "http",
            "asgi": _ASGI.copy(),
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "root_path": root,
            "headers": self._headers,
            "state": self.app_state.copy(),
            "method": parser.get_method().decode("ascii"),
            "path": root + path if root else path,
            "raw_path": root.encode("ascii") + raw_path if root else raw_path,
            "query_string": url.query or b"",
        }
        keep_alive = version != "1.0" and parser.should_keep_alive()
        exchange = Exchange(self, scope, keep_alive, self._continue)
        app = self.app
        limit = self._limit_concurrency
        if limit is not None and (
            len(self.server_state.connections) >= limit or len(self.server_state.tasks) >= limit
        ):
            log.warning("Exceeded concurrency limit.")
            app = service_unavailable
        previous, self.exchange = self.exchange, exchange
        if previous is None or previous.complete:
            self._answer(exchange, app)
        else:  # pipelined: answered once those before it are
            self.pause_reading()
            self._waiting.appendleft((exchange, app))

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        if exchange is None or exchange.complete or exchange.cut:
            return
        if exchange.add_body(body) > HIGH_WATER:
            self.pause_reading()

    def on_message_complete(self) -> None:
        self._head_left = self._bounds.max_header_bytes  # what follows is the next head
        exchange = self.exchange
        if exchange is None or exchange.complete:  # answered before its body ended
            self._bound(_IDLE, self._keep_alive_s)
            return
        self._phase = 0  # the app's turn: its own timeouts bound it
        if exchange.cut:
            return
        exchange.more_body = False
        exchange.wake()

    # -- what the exchanges call

    def answered(self, exchange: Exchange) -> None:
        """``exchange``'s response is complete: the next request's turn."""
        self.server_state.total_requests += 1
        if self._answering is exchange:
            self._answering = None
        if self.transport.is_closing():
            return
        self.resume_reading()
        if self._waiting:
            self._answer(*self._waiting.pop())
        elif not self._phase:  # nothing of the next request yet (else its head or body bound)
            self._bound(_IDLE, self._keep_alive_s)

    async def drain(self) -> None:
        """Until the transport's buffer is below its low-water mark again."""
        waiter = self.loop.create_future()
        self._drained.append(waiter)
        await waiter

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    # -- inside

    def _answer(self, exchange: Exchange, app: Any) -> None:
        self._answering = exchange
        if self._fresh_context:  # uvicorn's opt-in workaround for cpython#140947
            task = self.loop.create_task(exchange.run(app), context=contextvars.Context())
        else:
            task = self.loop.create_task(exchange.run(app))
        exchange.task = task  # before its first step: ``run`` takes it out of the set at its end
        self.server_state.tasks.add(task)

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            log.warning("Invalid HTTP request received.")
            self._send_400(b"Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            pass  # served as plain HTTP (on_headers_complete said so)

    def _send_400(self, message: bytes) -> None:
        content = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.append(b"content-type: text/plain; charset=utf-8\r\n")
        content.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(message))
        content.append(message)
        self.transport.write(b"".join(content))
        self.transport.close()

    def _bound(self, phase: int, seconds: float) -> None:
        """Bound ``phase`` to ``seconds`` from now. The timer is re-armed only if the new
        deadline comes before it fires: most requests move the deadline without touching it."""
        self._phase = phase
        self._deadline = deadline = self.loop.time() + seconds
        timer = self._timer
        if timer is None or deadline < self._timer_at:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._expired)
            self._timer_at = deadline

    def _expired(self) -> None:
        self._timer = None
        phase = self._phase
        if not phase or self.transport.is_closing():
            return
        if self.loop.time() + 0.001 < self._deadline:  # moved later meanwhile
            self._timer = self.loop.call_at(self._deadline, self._expired)
            self._timer_at = self._deadline
            return
        self._phase = 0
        if phase == _HEAD:
            if self._head_left is not None:
                self._cut(errors.REQUEST_HEAD_TIMEOUT, "head_timeout", answer=self._head_seen)
        elif phase == _BODY:
            self._body_timeout()
        else:  # kept alive long enough
            self.transport.close()

    def _cut(self, reason: Reason, count: str, answer: bool = True) -> None:
        setattr(self._cuts, count, getattr(self._cuts, count) + 1)
        self._warn(reason, getattr(self._cuts, count))
        self._phase = 0
        if not self.transport.is_closing():
            if answer:  # a connection that sent nothing is just closed
                self.transport.write(_raw_error(reason))
            self.transport.close()

    def _warn(self, reason: Reason, so_far: int) -> None:
        client = self.client[0] if self.client else "?"
        log.warning("connection from %s cut: %s (%d so far)", client, reason.code, so_far)

    def _body_timeout(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        self._cuts.body_timeout += 1
        self._warn(errors.REQUEST_BODY_TIMEOUT, self._cuts.body_timeout)
        if exchange.started:  # answered without the body: nothing to tell the app
            self.transport.close()
            return
        # The app sees the body end, with the mark that says why, and answers 408 itself.
        exchange.scope["state"][BODY_TIMEOUT] = True
        exchange.cut = True
        self.pause_reading()
        exchange.keep_alive = False
        exchange.more_body = False
        exchange.wake()
        self.loop.call_later(_ANSWER_GRACE_S, self.transport.close)
