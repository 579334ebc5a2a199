"""A lean HTTP/1.1 client for one upstream origin: a keep-alive pool of asyncio connections
whose answers httptools parses.

aiohttp's ClientSession cost about a quarter of the gateway's CPU per request (py-spy of a
loaded gateway, docs/performance.md): per request it builds a ClientRequest, a ClientResponse,
header multidicts, trace hooks and timer contexts. Here a request is one write of bytes built
from a prepared head, and an answer's head is one dict. What it does not do, it refuses:
an answer in a ``content-encoding`` (none is asked for) or a malformed one is ``broken``.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections import deque
from typing import Literal
from urllib.parse import urlsplit

import httptools

__all__ = ["Answer", "Origin", "WireError"]

# Reading pauses while this much of an answer waits unread (a slow reader, a huge answer).
_HIGH_WATER = 256 * 1024


class WireError(Exception):
    """``connect``: no connection could be made; ``broken``: the exchange failed after."""

    def __init__(self, kind: Literal["connect", "broken"], detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        # Made by the loop it lives on (a protocol factory). Kept: asyncio.get_running_loop()
        # costs a getpid() system call each time (CPython's check for a fork).
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.head_done = False
        self.keep_alive = False  # read with the head: the parser forgets it once complete
        self.complete = False
        self.body = bytearray()
        self.error: WireError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are no subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"unparsable answer ({exc})")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.head_done and not self.complete and self._until_close():
            self.complete = True  # a body delimited by the end of the connection
        elif not self.complete and self.error is None:
            self.error = WireError("broken", "connection closed by the upstream")
        self._wake()

    def pause_writing(self) -> None:  # a request body larger than the socket buffer
        pass

    def resume_writing(self) -> None:
        pass

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.body += body
        if len(self.body) > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # the exchange

    def send(self, data: bytes) -> None:
        self._reset()
        assert self.transport is not None
        self.transport.write(data)

    async def wait(self, read_timeout: float | None, deadline: float | None = None) -> None:
        """Until the parser has something new (head, body, end) or the connection failed;
        TimeoutError after ``read_timeout`` seconds or at ``deadline`` (a ``loop.time()``),
        whichever comes first: one timer for both."""
        if self.error is not None:
            raise self.error
        loop = self.loop
        waiter = self.waiter = loop.create_future()
        if read_timeout is not None:
            expires = loop.time() + read_timeout
            deadline = expires if deadline is None else min(deadline, expires)
        timer = loop.call_at(deadline, _expire, waiter) if deadline is not None else None
        try:
            await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()
        if self.error is not None:
            raise self.error

    def take(self) -> bytes:
        data = bytes(self.body)
        self.body.clear()
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return (
            self.complete
            and not self.closed
            and self.error is None
            and not self.body
            and self.keep_alive
        )

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _until_close(self) -> bool:
        return (
            "content-length" not in self.headers
            and "chunked" not in self.headers.get("transfer-encoding", "")
            and self.status not in (204, 304)
        )

    def _fail(self, detail: str) -> None:
        self.error = WireError("broken", detail)
        self.close()
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Answer:
    """An answer's status and head; its body read whole (``read``) or chunk by chunk
    (``chunk``), each wait bounded by the read timeout and a ``deadline`` if given.
    ``release`` hands the connection back (or closes it if the body was not read to its
    end); it must be called once, whatever happened."""

    __slots__ = ("_conn", "_origin", "_read_timeout", "headers", "loop", "status")

    def __init__(self, origin: Origin, conn: _Connection, read_timeout: float | None) -> None:
        self._origin = origin
        self._conn: _Connection | None = conn
        self.loop = conn.loop  # the loop it was read on
        self._read_timeout = read_timeout
        self.status = conn.status
        self.headers = conn.headers

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None

    def taken(self) -> bytes | None:
        """The part of the body already in, without waiting (a coroutine less per chunk
        for a stream's reader); ``b""`` at its end; None when the next part is still to
        come (then ``chunk`` waits for it)."""
        conn = self._conn
        if conn is None:
            return b""
        if conn.body:
            return conn.take()
        return b"" if conn.complete else None

    async def chunk(self, deadline: float | None = None) -> bytes:
        """The next part of the body; ``b""`` at its end."""
        conn = self._conn
        if conn is None:
            return b""
        while not conn.body:
            if conn.complete:
                return b""
            await conn.wait(self._read_timeout, deadline)
        return conn.take()

    async def read(self, limit: int, deadline: float | None = None) -> bytes | None:
        """The whole body, or None as soon as it is known to exceed ``limit`` bytes."""
        length = self.content_length
        if length is not None and length > limit:
            return None
        conn = self._conn
        if conn is not None and conn.complete:  # all in already (most answers: one read)
            return conn.take() if len(conn.body) <= limit else None
        data = bytearray()
        while chunk := await self.chunk(deadline):
            data += chunk
            if len(data) > limit:
                return None
        return bytes(data)

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._origin.give_back(conn)


class Origin:
    """``scheme://host:port`` with at most ``max_connections`` exchanges at once; more wait."""

    def __init__(self, base_url: str, max_connections: int) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._tls = url.scheme == "https"
        default = 443 if url.scheme == "https" else 80
        netloc = f"[{self._host}]" if ":" in self._host else self._host
        self.authority = netloc if self._port == default else f"{netloc}:{self._port}"
        self.prefix = url.path.rstrip("/")
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(max_connections)
        self._open: set[_Connection] = set()

    async def request(
        self,
        head: bytes,
        body: bytes,
        connect_timeout: float,
        read_timeout: float | None,
        deadline: float | None = None,
    ) -> Answer:
        """Send ``head`` (request line and headers, ending in a blank line) and ``body``;
        the answer once its head is in. Raises WireError, or TimeoutError when the connection
        or the head took too long, or at ``deadline`` (a ``loop.time()``)."""
        if self._slots.locked() and deadline is not None:  # waiting for a connection
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        else:
            await self._slots.acquire()
        conn: _Connection | None = None
        try:
            # A kept-alive connection without a coroutine (most requests); else a new one.
            conn = self._idle_one() or await self._connection(connect_timeout, deadline)
            # The connection's loop, not asyncio.get_running_loop(): that costs a getpid()
            # system call (CPython's check for a fork).
            if deadline is not None and conn.loop.time() >= deadline:
                raise TimeoutError("deadline passed before the attempt")
            conn.send(head + body if body else head)
            while not conn.head_done:
                await conn.wait(read_timeout, deadline)
            if conn.status < 200:  # an interim 1xx head: the answer follows it
                raise WireError("broken", f"interim answer {conn.status}")
            return Answer(self, conn, read_timeout)
        except BaseException:
            if conn is not None:
                conn.close()
                self._open.discard(conn)
            self._slots.release()
            raise

    def give_back(self, conn: _Connection) -> None:
        if conn.reusable():
            self._idle.append(conn)
        else:
            conn.close()
            self._open.discard(conn)
        self._slots.release()

    def _idle_one(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()  # the most recent: the least likely to be timed out
            if not conn.closed:
                return conn
            self._open.discard(conn)
        return None

    async def _connection(self, connect_timeout: float, deadline: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        if deadline is not None and loop.time() >= deadline:
            raise TimeoutError("deadline passed before the attempt")
        expires = loop.time() + connect_timeout
        tls = _tls_context() if self._tls else None
        try:
            async with asyncio.timeout_at(expires if deadline is None else min(expires, deadline)):
                _, conn = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=tls,
                    server_hostname=self._host if tls is not None else None,
                )
        except OSError as exc:  # refused, unreachable, DNS, TLS
            raise WireError("connect", f"cannot connect to {self.authority}: {exc}") from exc
        self._open.add(conn)
        return conn

    async def aclose(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One client context for every https origin, made at the first TLS connection: each
    costs ~25 ms of CPU (the system's CA store), paid at start-up for every https provider
    in gateway.yaml whether a model uses it or not."""
    return ssl.create_default_context()
