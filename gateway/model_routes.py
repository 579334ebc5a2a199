"""The model routes (``POST /v1{path}`` and ``/w/{workflow}/v1{path}``, one per surface)
served on bare ASGI, ahead of litestar; every other request goes on to litestar.

A profile of the default deployment (docs/performance.md) found about a sixth of the
gateway's CPU per request in litestar's routing, request and response objects and exception
middleware around a handler that needs none of them: the pipeline reads the body and the
headers itself and hands back a ``Reply``. ``GatewayApp`` (app.py) calls ``route``/``serve``
before litestar's own ``__call__``, so a model route does not pay for litestar's scope set-up
or its ``before_send`` wrapper either: the handler takes the audit step of a whole response
itself, just before its head is sent, as the ``before_send`` hook does for litestar's routes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from litestar.types import Receive, Send

from gateway import errors
from gateway.errors import GatewayError
from gateway.exchange import Exchange
from gateway.pipeline import Reply
from gateway.protocol import body_timed_out
from gateway.surfaces import Surface

__all__ = ["Handler", "ModelRoutes"]

log = logging.getLogger("gateway")

# The surface, the route's template (as litestar names it: the metrics' route label), the
# workflow of the path (None: none in the path), the headers and the body reader.
Handler = Callable[
    [Any, Surface, str, str | None, Mapping[str, str], Callable[[], Awaitable[bytes]]],
    Awaitable[Reply],
]


class ModelRoutes:
    """``POST`` on a surface's path is served by ``handle`` (``route`` finds it)."""

    def __init__(
        self,
        surfaces: Mapping[str, Surface],
        templates: Mapping[str, str],
        handle: Handler,
        max_body_bytes: int,
    ) -> None:
        self._surfaces = surfaces  # "/chat/completions" -> its surface
        self._templates = templates  # "/v1/chat/completions", "/w//v1/chat/completions"
        self._handle = handle
        self._limit = max_body_bytes

    def route(self, scope: Any) -> tuple[Surface, str, str | None] | None:
        """The surface, template and path workflow of a model route, None for anything else."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        path: str = scope["path"]
        workflow: str | None = None
        if path.startswith("/w/"):
            end = path.find("/", 3)
            if end <= 3:
                return None
            workflow, path = path[3:end], path[end:]
            key = "/w/" + path
        else:
            key = path
        if not path.startswith("/v1/") or (surface := self._surfaces.get(path[3:])) is None:
            return None
        return surface, self._templates[key], workflow

    async def serve(
        self,
        scope: Any,
        receive: Receive,
        send: Send,
        surface: Surface,
        template: str,
        workflow: str | None,
    ) -> None:
        # The first of a repeated name wins (a comprehension: 2.1 against 2.9 µs for a loop
        # over seven headers).
        headers = {n.decode("latin-1"): v.decode("latin-1") for n, v in reversed(scope["headers"])}
        limit = self._limit

        async def read_body() -> bytes:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                raise GatewayError(errors.REQUEST_TOO_LARGE, _too_large(limit))
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise GatewayError(errors.REQUEST_INVALID, detail="client disconnected")
                chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
                size += len(chunk)
                if size > limit:
                    raise GatewayError(errors.REQUEST_TOO_LARGE, _too_large(limit))
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            if body_timed_out(scope):  # the protocol ended the body: it came too slowly
                raise GatewayError(errors.REQUEST_BODY_TIMEOUT, headers={"connection": "close"})
            return b"".join(chunks)

        reply = await self._handle(scope, surface, template, workflow, headers, read_body)
        head = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
        head.append((b"content-type", _media_type(reply.content_type)))
        if reply.events is not None:
            await send({"type": "http.response.start", "status": reply.status, "headers": head})
            await _stream(reply.events, receive, send)
            return
        head.append((b"content-length", b"%d" % len(reply.body)))
        await send({"type": "http.response.start", "status": reply.status, "headers": head})
        await send({"type": "http.response.body", "body": reply.body, "more_body": False})


async def _stream(events: AsyncIterator[bytes], receive: Receive, send: Send) -> None:
    """Each event sent as it comes, in this task; a client gone away ends the stream at once
    (the relay's ``finally`` records the cut), as litestar's streaming response does, but
    without its task group: the first event is not held back until a new task runs (first
    event added, docs/performance.md)."""
    # Served by gateway/protocol.py, the connection tells of its loss itself: no watcher task
    # reading ``receive`` (9 µs of CPU before the first event at c=1, its end after the last),
    # and the exchange names the task running the app: asyncio.current_task() costs a
    # getpid() system call on CPython 3.11 (its look-up of the running loop).
    exchange = getattr(receive, "__self__", None)
    if not isinstance(exchange, Exchange) or exchange.task is None:
        exchange = None
    task = exchange.task if exchange is not None else asyncio.current_task()
    assert task is not None
    state = {"sending": True, "cut": False}

    def cut() -> None:
        if state["sending"] and not state["cut"]:  # once: one cancellation to take back
            state["cut"] = True
            task.cancel()

    def gone(watcher: asyncio.Future[bool]) -> None:
        if watcher.cancelled() or watcher.exception() is not None:
            return  # the stream ended first, or the server is going down: nothing to cut
        if watcher.result():
            cut()

    watcher: asyncio.Task[bool] | None = None
    if exchange is not None and not exchange.disconnected:
        exchange.on_disconnect = cut
    else:  # another ASGI server
        exchange = None
        watcher = task.get_loop().create_task(_disconnected(receive))
        watcher.add_done_callback(gone)
    try:
        async for chunk in events:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        state["sending"] = False
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not state["cut"] or task.uncancel() > 0:
            raise  # not (only) the client's doing, a shutdown: it goes on
    finally:
        state["sending"] = False
        if watcher is not None:
            watcher.cancel()
        if exchange is not None:
            exchange.on_disconnect = None


async def _disconnected(receive: Receive) -> bool:
    """True once the client has gone away (anything else it sends now is ignored)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    return True


def _too_large(limit: int) -> str:
    return f"The request body exceeds {limit} bytes."


def _media_type(content_type: str) -> bytes:
    """As litestar writes it: text types name their charset."""
    if content_type.startswith("text/") and "charset" not in content_type:
        content_type += "; charset=utf-8"
    return content_type.encode("latin-1")


def templates_of(router: Any, surfaces: Mapping[str, Surface]) -> dict[str, str]:
    """Each model route's template as litestar's router names it (the ``path_template`` of
    its scope), so the metrics' route label is the same whichever serves it."""
    found: dict[str, str] = {}
    for path in surfaces:
        for key, sample in ((f"/v1{path}", f"/v1{path}"), (f"/w//v1{path}", f"/w/x/v1{path}")):
            found[key] = router.handle_routing(path=sample, method="POST")[4]
    return found
