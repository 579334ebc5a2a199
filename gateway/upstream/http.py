"""One pooled HTTP client per provider, and the one place its exceptions are mapped.

aiohttp was chosen by measurement (bench/overhead.py, docs/performance.md): on one core it
proxied about seven times more requests per second than httpx at concurrency 16.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar

import aiohttp
import orjson

from gateway.config import UpstreamConfig
from gateway.upstream.provider import Timeouts, UpstreamFailure, UpstreamResponse
from gateway.upstream.sse import sse_events

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
        self._base = base_url.rstrip("/")
        self._headers = headers
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=300),
            skip_auto_headers=("User-Agent",),
            auto_decompress=True,
        )

    async def post(
        self,
        path: str,
        body: bytes | None,
        stream: bool,
        timeouts: Timeouts,
        headers: dict[str, str],
        method: str = "POST",
    ) -> UpstreamResponse:
        loop = asyncio.get_running_loop()
        remaining = timeouts.deadline - loop.time()
        if remaining <= 0:
            raise UpstreamFailure("timeout", "deadline passed before the attempt")
        timeout = _client_timeout(timeouts.connect, timeouts.read)
        if (traceparent := OUTBOUND_TRACEPARENT.get()) is not None:
            headers = {**headers, "traceparent": traceparent}
        try:
            async with asyncio.timeout_at(timeouts.deadline):
                response = await self._session.request(
                    method,
                    self._base + path,
                    data=body,
                    headers={**self._headers, **headers} if headers else self._headers,
                    timeout=timeout,
                )
                if response.status >= 400:
                    await self._fail(response)
                content_type = response.headers.get("content-type", "")
                if not stream:
                    try:
                        data = await _read_at_most(response, self._bounds.max_answer_bytes)
                    finally:
                        response.release()
                    _check_json(data)
                    return UpstreamResponse(response.status, content_type, body=data)
        except TimeoutError as exc:
            raise UpstreamFailure("timeout", "no answer before the deadline") from exc
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamFailure("connect", str(exc)) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamFailure("broken", type(exc).__name__) from exc
        if not content_type.startswith("text/event-stream"):
            response.close()
            # An unknown stream shape is refused, never relayed unread.
            raise UpstreamFailure("broken", f"stream answered with {content_type or 'no type'}")
        return UpstreamResponse(
            response.status,
            content_type,
            events=_events(response, self._bounds),
        )

    async def _fail(self, response: aiohttp.ClientResponse) -> None:
        try:
            body = await response.content.read(_MAX_ERROR_BODY)
        finally:
            response.close()
        raise UpstreamFailure(
            "status",
            f"HTTP {response.status}",
            status=response.status,
            retry_after=_retry_after(response.headers.get("retry-after")),
            body=body,
            content_type=response.headers.get("content-type"),
        )

    async def aclose(self) -> None:
        await self._session.close()


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, refused as soon as it is known to exceed ``limit`` bytes."""
    if response.content_length is not None and response.content_length > limit:
        response.close()
        raise UpstreamFailure("too_large", f"an answer of {response.content_length} bytes")
    data = bytearray()
    while chunk := await response.content.readany():
        data += chunk
        if len(data) > limit:
            response.close()
            raise UpstreamFailure("too_large", f"an answer over {limit} bytes")
    return bytes(data)


async def _events(response: aiohttp.ClientResponse, bounds: UpstreamConfig) -> AsyncIterator[bytes]:
    """The response's SSE events; closing early drops the connection so the upstream stops."""
    try:
        async for event in sse_events(_chunks(response, bounds), bounds.max_event_bytes):
            yield event
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamFailure("broken", type(exc).__name__) from exc
    finally:
        response.close()


async def _chunks(response: aiohttp.ClientResponse, bounds: UpstreamConfig) -> AsyncIterator[bytes]:
    """The body's chunks while the stream is within its duration and idle bounds. The
    timeout wraps the read only: it never fires while the relay waits on the client."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + bounds.stream_timeout_s
    while True:
        wait = min(ends - loop.time(), bounds.idle_timeout_s)
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                chunk = await response.content.readany()
        except TimeoutError as exc:  # aiohttp's sock_read (the policy's) is one too
            raise UpstreamFailure("timeout", "the stream ran too long or stalled") from exc
        if not chunk:
            return
        yield chunk


@functools.lru_cache(maxsize=64)
def _client_timeout(connect: float, read: float | None) -> aiohttp.ClientTimeout:
    """Per policy, not per request; the total is the deadline, enforced around the attempt."""
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_read=read)


def _check_json(data: bytes) -> None:
    """A 200 that is not JSON is an unknown shape: refused, never relayed unread."""
    try:
        orjson.loads(data)
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
