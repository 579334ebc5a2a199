"""One request and its response on a connection of gateway/protocol.py: the ASGI app's
``receive`` and ``send``, and the task that runs it.

A response's head is held until its first body message (the ASGI spec lets a server wait for
it), so a whole response is one write (one system call); a stream's (one without a
content-length) only until the end of that turn of the event loop if that comes first, so a
client waiting for a slow model's first token sees the status at once. The first body message
of a turn of the event loop is written at once; those sent after it in the same turn (a
burst of events the upstream sent together, the relay handing on one per message) are
written together at the turn's end. Headers the app sends are checked as uvicorn checks them
(a name is a token, a value has no control character but tab), with one regular expression
over all names and one over all values.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.protocol import HttpProtocol

__all__ = ["HIGH_WATER", "Exchange"]

log = logging.getLogger("gateway.protocol")

# A body buffered beyond this many bytes pauses reading until the app asks for it.
HIGH_WATER = 65536
_NAME = re.compile(b'[\x00-\x1f\x7f()<>@,;:\\[\\]={} \t\\\\"]')
_VALUE = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase)


# Body messages held for the end of the turn at most (the relay sends one per event).
_PENDING_MAX = 64
# A body this large is written after its head rather than copied behind it.
_COPY_MAX = 65536
_STATUS = {status: _status_line(status) for status in range(100, 600)}
_DISCONNECT = {"type": "http.disconnect"}


class Exchange:
    """A request's scope, its body as it arrives, and its response as the app sends it."""

    __slots__ = (
        "_chunked",
        "_chunks",
        "_conn",
        "_head",
        "_left",
        "_pending",
        "_ran",
        "_ready",
        "_size",
        "_waiters",
        "complete",
        "cut",
        "disconnected",
        "expect_continue",
        "keep_alive",
        "more_body",
        "on_disconnect",
        "scope",
        "started",
        "task",
    )

    def __init__(
        self, conn: HttpProtocol, scope: dict[str, Any], keep_alive: bool, expect_continue: bool
    ) -> None:
        self._conn = conn
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.more_body = True
        self.cut = False  # the body was ended by its timeout
        self.started = False
        self.complete = False
        self.disconnected = False
        self._chunks: list[bytes] = []
        self._size = 0
        self._ready = False  # something for ``receive`` to return
        self._waiters: list[asyncio.Future[None]] = []
        # Body data sent in this turn of the event loop after its first write, written at the
        # turn's end (None: nothing written in this turn yet).
        self._pending: list[bytes] | None = None
        self._head: bytes | None = None  # the response head, until the first body message
        self._chunked = False
        self._left = 0  # of the content-length
        self._ran = False
        # The task running ``run``, in the server's set until it ends (it takes itself out:
        # no done callback to schedule per request).
        self.task: asyncio.Task[None] | None = None
        # Called when the connection is lost before the response completed (the model
        # routes' stream loop: it ends the stream at once).
        self.on_disconnect: Callable[[], None] | None = None

    # -- the connection's calls

    def add_body(self, chunk: bytes) -> int:
        """Buffer ``chunk`` for the app; the size buffered."""
        self._chunks.append(chunk)
        self._size += len(chunk)
        self.wake()
        return self._size

    def wake(self) -> None:
        self._ready = True
        if self._waiters:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._waiters = []

    async def run(self, app: Any) -> None:
        """Run the app for this request; what it leaves undone is answered for it."""
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            log.error("Exception in ASGI application\n", exc_info=exc)
            if not self.started:
                await self._send_500()
            else:
                self._close()
        else:
            if result is not None:
                log.error("ASGI callable should return None, but returned '%s'.", result)
                self._close()
            elif not self.started and not self.disconnected:
                log.error("ASGI callable returned without starting response.")
                await self._send_500()
            elif not self.complete and not self.disconnected:
                log.error("ASGI callable returned without completing response.")
                self._close()
        finally:
            self._ran = True
            if self.task is not None:
                self._conn.server_state.tasks.discard(self.task)

    # -- the app's calls

    async def receive(self) -> dict[str, Any]:
        conn = self._conn
        if self.expect_continue and not conn.transport.is_closing():
            conn.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.expect_continue = False
        if not self.disconnected and not self.complete:
            if not self.cut:
                conn.resume_reading()
            if not self._ready:
                waiter = conn.loop.create_future()
                self._waiters.append(waiter)
                await waiter
            self._ready = False
        if self.disconnected or self.complete:
            return _DISCONNECT.copy()
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if chunks:
            self._chunks = []
            self._size = 0
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    async def send(self, message: Any) -> None:
        conn = self._conn
        if conn.write_paused and not self.disconnected:
            await conn.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"Expected 'http.response.start', but got '{kind}'.")
            self.started = True
            self.expect_continue = False
            self._head = self._head_of(message["status"], message.get("headers", ()))
            if self._chunked:  # a stream: its head goes out at the latest at the turn's end
                conn.loop.call_soon(self._flush_head)
            return
        if self.complete:
            raise RuntimeError(f"Unexpected '{kind}' sent after the response completed.")
        if kind != "http.response.body":
            raise RuntimeError(f"Expected 'http.response.body', but got '{kind}'.")
        body: bytes = message.get("body", b"")
        more_body = message.get("more_body", False)
        if self.scope["method"] == "HEAD":
            self._left = 0
            data = b""
        elif self._chunked:
            data = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            if not more_body:
                data += b"0\r\n\r\n"
        else:
            if len(body) > self._left:
                raise RuntimeError("Response content longer than Content-Length")
            self._left -= len(body)
            data = body
        head = self._head
        if head is not None:  # the first body message: nothing is pending
            self._head = None
            if len(data) < _COPY_MAX:
                data = head + data
            else:
                conn.transport.write(head)
        pending = self._pending
        if pending is None:
            if data:
                conn.transport.write(data)
            if more_body:  # more may come in this turn: written together at its end
                self._pending = []
                conn.loop.call_soon(self._flush)
        elif more_body and len(pending) < _PENDING_MAX:
            pending.append(data)
        else:
            pending.append(data)
            self._flush()
        if not more_body:
            if self._left:
                raise RuntimeError("Response content shorter than Content-Length")
            self.complete = True
            self.wake()
            if not self.keep_alive:
                conn.transport.close()
            if not self._ran:
                conn.answered(self)

    # -- inside

    def _close(self) -> None:
        """Close the connection after what was sent (a response cut short)."""
        self._flush_head()
        self._flush()
        self._conn.transport.close()

    def _flush_head(self) -> None:
        """A stream's head whose first event did not follow in the same turn goes alone: its
        client gets the status and headers while the upstream (or the boundary's hold-back
        window) keeps the first event back."""
        head, self._head = self._head, None
        if head is not None and not self._conn.transport.is_closing():
            self._conn.transport.write(head)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._conn.transport.is_closing():
            self._conn.transport.write(b"".join(pending))

    def _head_of(self, status: int, headers: Any) -> bytes:
        """The status line and headers, with what the response's framing needs added."""
        parts = [_STATUS[status]]
        for name, value in self._conn.server_state.default_headers:
            parts += (name, b": ", value, b"\r\n")
        chunked: bool | None = None
        close = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-length" and chunked is None:
                self._left = int(value.decode())
                chunked = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self._left = 0
                chunked = True
            elif name == b"connection" and b"close" in [
                token.lower().strip() for token in value.split(b",")
            ]:
                self.keep_alive = False
                close = True
            parts += (name, b": ", value, b"\r\n")
        if _NAME.search(b"".join(parts[1::4])):
            raise RuntimeError("Invalid HTTP header name.")
        if _VALUE.search(b"".join(parts[3::4])):
            raise RuntimeError("Invalid HTTP header value.")
        if not self.keep_alive and not close:
            parts.append(b"connection: close\r\n")
        if chunked is None and self.scope["method"] != "HEAD" and status not in (204, 304):
            chunked = True
            parts.append(b"transfer-encoding: chunked\r\n")
        self._chunked = bool(chunked)
        parts.append(b"\r\n")
        return b"".join(parts)

    async def _send_500(self) -> None:
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"21"),
            (b"connection", b"close"),
        ]
        await self.send({"type": "http.response.start", "status": 500, "headers": headers})
        await self.send(
            {"type": "http.response.body", "body": b"Internal Server Error", "more_body": False}
        )
