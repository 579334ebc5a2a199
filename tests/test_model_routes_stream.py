"""The model routes' stream loop (gateway/model_routes.py ``_stream``), driven through its ASGI
callables: a client that goes away ends the stream at once and quietly (the events' own
``finally`` runs, as the relay's records the cut), while a cancellation that is not the
client's (a shutdown) still goes through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.model_routes import _stream


class Client:
    """An ASGI client: ``receive`` waits until ``leave`` (then says so), ``send`` keeps all."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.left = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Any) -> None:
        self.sent.append(message)


async def _events(closed: list[str], stall: asyncio.Event) -> AsyncIterator[bytes]:
    try:
        yield b"data: 1\n\n"
        await stall.wait()  # an upstream that says nothing more for now
        yield b"data: 2\n\n"
    finally:
        closed.append("closed")


async def test_a_stream_goes_out_whole_and_ends() -> None:
    client, closed, stall = Client(), [], asyncio.Event()
    stall.set()
    await _stream(_events(closed, stall), client.receive, client.send)
    assert [m["body"] for m in client.sent] == [b"data: 1\n\n", b"data: 2\n\n", b""]
    assert client.sent[-1]["more_body"] is False
    assert closed == ["closed"]


async def test_a_client_gone_away_ends_a_stalled_stream_at_once() -> None:
    client, closed, stall = Client(), [], asyncio.Event()
    running = asyncio.create_task(_stream(_events(closed, stall), client.receive, client.send))
    await asyncio.sleep(0.01)
    assert [m["body"] for m in client.sent] == [b"data: 1\n\n"]
    client.left.set()
    await asyncio.wait_for(running, 1.0)  # returns, not cancelled: the cut is no error
    assert not running.cancelled()
    assert closed == ["closed"]
    assert [m["body"] for m in client.sent] == [b"data: 1\n\n"]  # nothing after the cut


async def test_a_shutdown_cancels_the_stream_as_before() -> None:
    client, closed, stall = Client(), [], asyncio.Event()
    running = asyncio.create_task(_stream(_events(closed, stall), client.receive, client.send))
    await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert closed == ["closed"]
