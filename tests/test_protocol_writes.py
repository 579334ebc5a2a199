"""How many writes (system calls) the gateway's HTTP protocol spends on a response, counted on
an asyncio transport that records them: a socket cannot tell, since two writes in a row
arrive as one segment as often as not. The app is a few lines of ASGI shaped like the model
routes' (gateway/model_routes.py): the protocol is what is under test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from gateway.config import ServerConfig
from gateway.model_routes import _stream
from gateway.protocol import HttpProtocol

App = Callable[[Any, Any, Any], Awaitable[None]]
REQUEST = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-length: 2\r\n\r\n{}"


class Recorder(asyncio.Transport):
    """What the protocol wrote, one entry per ``write`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.wrote = asyncio.Event()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        self.wrote.set()

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(name)


def _connect(app: App, state: ServerState) -> tuple[HttpProtocol, Recorder]:
    """A connection of ``app`` that has been sent one request."""
    config = Config(app=app, lifespan="off")
    protocol = HttpProtocol(config, state, {}, bounds=ServerConfig(), cuts=None)  # type: ignore[arg-type]
    transport = Recorder()
    protocol.connection_made(transport)
    protocol.data_received(REQUEST)
    return protocol, transport


async def _serve(app: App, until: Callable[[Recorder], bool]) -> Recorder:
    """Feed one request to a connection of ``app``; return once ``until`` holds."""
    protocol, transport = _connect(app, ServerState())
    async with asyncio.timeout(5):
        while not until(transport):
            await transport.wrote.wait()
            transport.wrote.clear()
    protocol.connection_lost(None)
    return transport


def _start(stream: bool) -> dict[str, Any]:
    framing = (b"content-type", b"text/event-stream") if stream else (b"content-length", b"5")
    return {"type": "http.response.start", "status": 200, "headers": [framing]}


def _body(data: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def _ended(transport: Recorder) -> bool:
    return bool(transport.writes) and transport.writes[-1].endswith((b"hello", b"0\r\n\r\n"))


async def test_a_whole_response_is_one_write() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(_start(stream=False))
        await send(_body(b"hello", more=False))

    writes = (await _serve(app, _ended)).writes
    assert len(writes) == 1, writes
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\nhello")


async def test_a_streams_head_is_not_held_for_a_late_first_event() -> None:
    """A slow model's first token (or the boundary's hold-back window) must not keep the
    status and headers from the client."""
    first_event = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(_start(stream=True))
        await first_event.wait()
        await send(_body(b"data: 1\n\n", more=True))
        await send(_body(b"", more=False))

    async def serve() -> Recorder:
        return await _serve(app, _ended)

    task = asyncio.create_task(serve())
    await asyncio.sleep(0.05)  # many turns of the loop, and no event yet
    first_event.set()
    writes = (await task).writes
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in writes[0]
    assert b"".join(writes[1:]) == b"9\r\ndata: 1\n\n\r\n0\r\n\r\n"


async def test_events_sent_in_one_turn_are_one_write() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(_start(stream=True))
        for i in range(5):  # a burst the upstream sent together
            await send(_body(b"data: %d\n\n" % i, more=True))
        await send(_body(b"", more=False))

    writes = (await _serve(app, _ended)).writes
    # The head with the first event, then the rest of the turn's events and the end together.
    assert len(writes) == 2, writes
    assert writes[0].endswith(b"\r\n\r\n9\r\ndata: 0\n\n\r\n")
    assert writes[1] == b"".join(b"9\r\ndata: %d\n\n\r\n" % i for i in range(1, 5)) + b"0\r\n\r\n"


async def test_a_whole_responses_head_waits_for_its_body_across_turns() -> None:
    """A response with a content-length is one write even when its body comes turns after its
    head: the head waits for it (no callback per response to flush it at the turn's end)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(_start(stream=False))
        await asyncio.sleep(0.02)  # many turns of the loop
        await send(_body(b"hello", more=False))

    writes = (await _serve(app, _ended)).writes
    assert len(writes) == 1, writes
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\nhello")


async def test_a_finished_request_leaves_the_servers_task_set() -> None:
    """The task takes itself out of uvicorn's set (which its shutdown and
    ``limit_concurrency`` count) when it ends, without a done callback."""
    state = ServerState()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        assert len(state.tasks) == 1
        await send(_start(stream=False))
        await send(_body(b"hello", more=False))

    _, transport = _connect(app, state)
    (task,) = state.tasks
    await task
    assert not state.tasks
    assert transport.writes[-1].endswith(b"hello")


async def test_a_lost_connection_ends_the_model_routes_stream_quietly() -> None:
    """Served by this protocol, the model routes' stream loop learns of the lost connection
    from the exchange itself (no watcher task): the stalled stream ends at once, its events'
    ``finally`` runs, and the task returns rather than being cancelled."""
    closed: list[str] = []
    stall = asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"data: 1\n\n"
            await stall.wait()  # an upstream that says nothing more for now
            yield b"data: 2\n\n"
        finally:
            closed.append("closed")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(_start(stream=True))
        await _stream(events(), receive, send)
        returned.append(True)  # not cancelled: a client's cut is no error

    returned: list[bool] = []
    state = ServerState()
    protocol, transport = _connect(app, state)
    (task,) = state.tasks
    await asyncio.sleep(0.01)
    assert b"data: 1" in b"".join(transport.writes)
    protocol.connection_lost(None)
    await asyncio.wait_for(task, 1.0)
    assert returned == [True]
    assert closed == ["closed"]
    assert b"data: 2" not in b"".join(transport.writes)
