"""One pooled HTTP client per provider, and the one place its exceptions are mapped.

The client is gateway/upstream/wire.py's: aiohttp (chosen over httpx by bench/overhead.py,
seven times the requests per second on one core) still cost about a quarter of the
gateway's CPU per request in a profile of the default deployment (docs/performance.md).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

import orjson

from gateway.config import UpstreamConfig
from gateway.upstream.provider import Timeouts, UpstreamFailure, UpstreamResponse
from gateway.upstream.sse import EventSplitter
from gateway.upstream.wire import Answer, Origin, WireError

__all__ = ["OUTBOUND_TRACEPARENT", "HttpUpstream"]

_MAX_ERROR_BODY = 64 * 1024

# The W3C traceparent the request being served sends upstream (set by the tracer,
# gateway/observe/traces.py; None when nothing traces it). A context variable: each request
# runs in its own task, so it never leaks into another request's call.
OUTBOUND_TRACEPARENT: ContextVar[str | None] = ContextVar("outbound_traceparent", default=None)


class HttpUpstream:
    """POSTs JSON to one base URL over a keep-alive pool; created inside the running loop.
    ``bounds`` caps what one answer may make the gateway hold or keep open."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        max_connections: int,
        bounds: UpstreamConfig | None = None,
    ) -> None:
        self._bounds = bounds or UpstreamConfig()
        self._origin = Origin(base_url, max_connections)
        # Every request's head but its request line and its own headers, built once.
        self._fixed = _header_lines({"host": self._origin.authority, **headers})

    async def post(
        self,
        path: str,
        body: bytes | None,
        stream: bool,
        timeouts: Timeouts,
        headers: dict[str, str],
        method: str = "POST",
    ) -> UpstreamResponse:
        if (traceparent := OUTBOUND_TRACEPARENT.get()) is not None:
            headers = {**headers, "traceparent": traceparent}
        head = self._head(method, path, headers, body)
        # Every wait until the answer is in (a free connection, the connection, the head,
        # the body) ends at the deadline: the client's own timers bound each by it, one
        # timer per wait instead of an asyncio.timeout_at around them all; a deadline that
        # has passed sends nothing.
        deadline = timeouts.deadline
        try:
            answer = await self._origin.request(
                head, body or b"", timeouts.connect, timeouts.read, deadline
            )
            try:
                if answer.status >= 400:
                    await _fail(answer, deadline)
                content_type = _content_type(answer)
                if not stream:
                    data = await self._whole(answer, deadline)
                    return UpstreamResponse(
                        answer.status, content_type, body=data, data=_check_json(data)
                    )
                if not content_type.startswith("text/event-stream"):
                    # An unknown stream shape is refused, never relayed unread.
                    raise UpstreamFailure(
                        "broken", f"stream answered with {content_type or 'no type'}"
                    )
            except BaseException:
                answer.release()
                raise
        except TimeoutError as exc:
            raise UpstreamFailure("timeout", "no answer before the deadline") from exc
        except WireError as exc:
            raise UpstreamFailure(exc.kind, str(exc)) from exc
        return UpstreamResponse(answer.status, content_type, events=_events(answer, self._bounds))

    async def _whole(self, answer: Answer, deadline: float) -> bytes:
        """The body of a whole answer, its connection handed back once read."""
        limit = self._bounds.max_answer_bytes
        try:
            data = await answer.read(limit, deadline)
        finally:
            answer.release()
        if data is None:
            raise UpstreamFailure("too_large", f"an answer over {limit} bytes")
        return data

    def _head(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> bytes:
        lines = [f"{method} {self._origin.prefix}{path} HTTP/1.1\r\n".encode(), self._fixed]
        if headers:
            lines.append(_header_lines(headers))
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(b"content-length: %d\r\n" % len(body or b""))
        lines.append(b"\r\n")
        return b"".join(lines)

    async def aclose(self) -> None:
        await self._origin.aclose()


def _header_lines(headers: dict[str, str]) -> bytes:
    """``name: value\\r\\n`` lines; a name or value that would split the head is refused."""
    lines = []
    for name, value in headers.items():
        line = f"{name}: {value}\r\n"
        if line.count("\n") != 1 or "\r" in line[:-2]:
            raise UpstreamFailure("config", f"header {name[:64]!r} holds a line break")
        lines.append(line)
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise UpstreamFailure("config", "a header holds a character HTTP cannot carry") from exc


def _content_type(answer: Answer) -> str:
    """The answer's content type, once its encoding is known to be usable. No encoding is
    asked for, so an encoded answer is an unknown shape: refused unread. Not a coroutine:
    one frame less before a stream's first event."""
    encoding = answer.headers.get("content-encoding")
    if encoding is not None and encoding.strip().lower() not in ("identity", ""):
        raise UpstreamFailure("broken", f"answer in content-encoding {encoding[:32]!r}")
    return answer.headers.get("content-type", "")


async def _fail(answer: Answer, deadline: float) -> None:
    body = b""
    try:
        while len(body) < _MAX_ERROR_BODY and (chunk := await answer.chunk(deadline)):
            body += chunk
    except WireError:
        pass  # the status is the failure; its body is a courtesy
    raise UpstreamFailure(
        "status",
        f"HTTP {answer.status}",
        status=answer.status,
        retry_after=_retry_after(answer.headers.get("retry-after")),
        body=body[:_MAX_ERROR_BODY],
        content_type=answer.headers.get("content-type"),
    )


async def _events(answer: Answer, bounds: UpstreamConfig) -> AsyncIterator[bytes]:
    """The response's SSE events while the stream is within its duration and idle bounds;
    closing early drops the connection so the upstream stops.

    One generator reads the chunks and splits them (three nested ones before: a frame
    switch each per chunk, 11.6 µs of CPU before a stream's first event at c=1). The
    timeout bounds the wait for a chunk only: it never fires while the relay waits on the
    client, nor for a chunk already in."""
    loop = answer.loop  # not asyncio.get_running_loop(): a getpid() before the first event
    ends = loop.time() + bounds.stream_timeout_s
    splitter = EventSplitter(bounds.max_event_bytes)
    try:
        while True:
            chunk = answer.taken()
            if chunk is None:
                now = loop.time()
                try:  # one timer for this bound and the read timeout, whichever ends first
                    chunk = await answer.chunk(
                        now + max(min(ends - now, bounds.idle_timeout_s), 0.0)
                    )
                except TimeoutError as exc:  # the policy's read timeout between chunks too
                    raise UpstreamFailure("timeout", "the stream ran too long or stalled") from exc
            if not chunk:
                break
            splitter.feed(chunk)
            while (event := splitter.next()) is not None:
                yield event
        if (rest := splitter.rest()) is not None:
            yield rest
    except WireError as exc:
        raise UpstreamFailure("broken", str(exc)) from exc
    finally:
        answer.release()


def _check_json(data: bytes) -> Any:
    """``data`` parsed; a 200 that is not JSON is an unknown shape: refused, never relayed
    unread."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamFailure("broken", "answer is not JSON") from exc


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
