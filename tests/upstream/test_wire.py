"""The upstream HTTP/1.1 client (gateway/upstream/wire.py through http.py) against a raw
asyncio server: keep-alive reuse, the shapes it refuses, bodies ended by the connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from gateway.config import UpstreamConfig
from gateway.surfaces import OPENAI
from gateway.upstream.http import HttpUpstream
from gateway.upstream.provider import Timeouts, UpstreamFailure

OK = b'{"ok":true}'


def _answer(body: bytes, *head: bytes) -> bytes:
    lines = [b"HTTP/1.1 200 OK", b"content-type: application/json", *head]
    if not any(h.startswith(b"content-length") for h in head):
        lines.append(b"content-length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Server:
    """Answers each request head with ``answer(head)``; counts connections and requests."""

    def __init__(self, answer: Callable[[bytes], bytes], close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.heads: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = 0
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                writer.write(self.answer(head))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def _serving(
    server: _Server, bounds: UpstreamConfig | None = None
) -> AsyncIterator[HttpUpstream]:
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    upstream = HttpUpstream(f"http://127.0.0.1:{port}/v1", {"authorization": "Bearer k"}, 4, bounds)
    try:
        yield upstream
    finally:
        await upstream.aclose()
        listening.close()
        await listening.wait_closed()


def _timeouts() -> Timeouts:
    return Timeouts(2.0, 2.0, asyncio.get_running_loop().time() + 5.0)


async def test_connections_are_kept_alive_and_reused() -> None:
    server = _Server(lambda head: _answer(OK))
    async with _serving(server) as upstream:
        for _ in range(5):
            answer = await upstream.post("/chat/completions", b"{}", False, _timeouts(), {})
            assert answer.status == 200 and answer.body == OK
    assert server.connections == 1
    assert len(server.heads) == 5
    head = server.heads[0]
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"\r\nauthorization: Bearer k\r\n" in head and b"\r\ncontent-length: 2\r\n" in head


async def test_a_closed_connection_is_not_reused() -> None:
    server = _Server(lambda head: _answer(OK, b"connection: close"), close_after=True)
    async with _serving(server) as upstream:
        for _ in range(3):
            answer = await upstream.post("/chat/completions", b"{}", False, _timeouts(), {})
            assert answer.body == OK
    assert server.connections == 3


async def test_a_body_ended_by_the_connection_is_read_whole() -> None:
    def answer(head: bytes) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n" + OK
        )

    async with _serving(_Server(answer, close_after=True)) as upstream:
        got = await upstream.post("/chat/completions", b"{}", False, _timeouts(), {})
    assert got.body == OK


async def test_an_encoded_answer_is_refused_unread() -> None:
    server = _Server(lambda head: _answer(b"\x1f\x8b...", b"content-encoding: gzip"))
    async with _serving(server) as upstream:
        with pytest.raises(UpstreamFailure) as caught:
            await upstream.post("/chat/completions", b"{}", False, _timeouts(), {})
    assert caught.value.kind == "broken"


async def test_a_header_value_with_a_line_break_is_refused() -> None:
    async with _serving(_Server(lambda head: _answer(OK))) as upstream:
        headers = {"anthropic-beta": "x\r\nhost: elsewhere"}
        with pytest.raises(UpstreamFailure) as caught:
            await upstream.post("/messages", b"{}", False, _timeouts(), headers)
    assert caught.value.kind == "config"


async def test_an_answer_over_the_bound_is_too_large() -> None:
    big = b'{"x":"' + b"a" * 4096 + b'"}'
    bounds = UpstreamConfig(max_answer_bytes=1024)
    async with _serving(_Server(lambda head: _answer(big)), bounds) as upstream:
        with pytest.raises(UpstreamFailure) as caught:
            await upstream.post("/chat/completions", b"{}", False, _timeouts(), {})
    assert caught.value.kind == "too_large"


@pytest.mark.parametrize("whole", [True, False], ids=["in-one-write", "in-two-writes"])
async def test_a_chunked_answer_over_the_bound_is_too_large(whole: bool) -> None:
    """No content-length to refuse it by: the body read is held to the bound, whether it is
    all in when the read starts or comes after it."""
    big = b'{"x":"' + b"a" * 4096 + b'"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        if whole:
            writer.write(head + chunked)
        else:
            writer.write(head)
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(chunked)
        await writer.drain()
        await reader.read()
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    bounds = UpstreamConfig(max_answer_bytes=1024)
    upstream = HttpUpstream(f"http://127.0.0.1:{port}/v1", {"authorization": "Bearer k"}, 4, bounds)
    try:
        with pytest.raises(UpstreamFailure) as caught:
            await upstream.post("/chat/completions", b"{}", False, _timeouts(), {})
        assert caught.value.kind == "too_large"
    finally:
        await upstream.aclose()
        listening.close()
        await listening.wait_closed()


async def test_an_error_status_carries_its_body_and_retry_after() -> None:
    def answer(head: bytes) -> bytes:
        body = b'{"error":"slow down"}'
        return (
            b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
            b"retry-after: 3\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )

    async with _serving(_Server(answer)) as upstream:
        with pytest.raises(UpstreamFailure) as caught:
            await upstream.post("/chat/completions", b"{}", False, _timeouts(), {})
    assert caught.value.kind == "status" and caught.value.status == 429
    assert caught.value.retry_after == 3.0 and caught.value.body == b'{"error":"slow down"}'


async def test_a_deadline_passed_sends_nothing() -> None:
    server = _Server(lambda head: _answer(OK))
    async with _serving(server) as upstream:
        await upstream.post("/chat/completions", b"{}", False, _timeouts(), {})  # one idle
        late = Timeouts(2.0, 2.0, asyncio.get_running_loop().time() - 0.001)
        for _ in range(2):  # on the idle connection, then on a new one
            with pytest.raises(UpstreamFailure) as failed:
                await upstream.post("/chat/completions", b"{}", False, late, {})
            assert failed.value.kind == "timeout"
    assert len(server.heads) == 1


async def test_a_whole_answer_comes_with_its_json_parsed_once() -> None:
    server = _Server(lambda head: _answer(b'{"usage":{"prompt_tokens":3,"completion_tokens":4}}'))
    async with _serving(server) as upstream:
        answer = await upstream.post("/chat/completions", b"{}", False, _timeouts(), {})
    assert answer.data == {"usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    read = OPENAI.read_answer(answer.body or b"", data=answer.data)
    assert read.data is answer.data  # the surface reads what the client parsed
    assert (read.tokens_in, read.tokens_out) == (3, 4)
