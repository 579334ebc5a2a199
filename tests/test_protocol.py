"""The gateway's HTTP/1.1 protocol (gateway/protocol.py, gateway/exchange.py) over real
sockets, against the gateway served by uvicorn's server as `gateway serve` runs it: what
uvicorn's protocol did and clients rely on (keep-alive, pipelining, HEAD, 100-continue,
chunked bodies, ``connection: close``, flow control, graceful shutdown). How many writes a
response takes is in tests/test_protocol_writes.py; the bounds on heads and bodies are in
tests/hardening."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import POLICIES, UPSTREAM_KEYS, Gateway, gateway_config
from tests.fakes.upstream import FakeUpstream, Reply, SlowStream
from tests.support.process import kill_group, serve
from tests.support.server import new_key, write_yaml

PATH = "/w/chat_app/v1/chat/completions"


class Conn:
    """One client connection; ``response`` reads the next answer off it (kept-alive)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> bytes:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("the gateway closed the connection")
        return chunk

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
        if head_only or status == 100:
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            return status, headers, self._chunked()
        length = int(headers["content-length"])
        while len(self.buf) < length:
            self.buf += self.recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def _chunked(self) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                self.buf += self.recv()
            size_line, rest = self.buf.split(b"\r\n", 1)
            size = int(size_line, 16)
            while len(rest) < size + 2:
                rest += self.recv()
            body, self.buf = body + rest[:size], rest[size + 2 :]
            if size == 0:
                return body

    def closed(self) -> bool:
        """Whether the gateway closes the connection (within the socket's timeout)."""
        try:
            return self.sock.recv(1) == b""
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


def _chat(gw: Gateway, text: str, *, stream: bool = False, head: str = "") -> bytes:
    body = orjson.dumps(
        {"model": "gpt-test", "messages": [{"role": "user", "content": text}], "stream": stream}
    )
    return (
        f"POST {PATH} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {gw.analyst_key}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n{head}\r\n"
    ).encode() + body


def _text(body: bytes) -> str:
    return str(orjson.loads(body)["choices"][0]["message"]["content"])


@pytest.fixture
def conn(gateway: Gateway) -> Conn:
    return Conn(gateway.url)


def test_a_whole_response_and_a_stream_over_a_socket(gateway: Gateway, conn: Conn) -> None:
    """How many writes each takes is in tests/test_protocol_writes.py."""
    conn.send(_chat(gateway, "hello there"))
    status, headers, whole = conn.response()
    assert status == 200 and "hello there" in _text(whole)
    assert len(whole) == int(headers["content-length"]) and "x-gateway-decision" in headers
    conn.send(_chat(gateway, "one two three", stream=True))
    status, headers, body = conn.response()
    assert (
        headers["transfer-encoding"] == "chunked" and "text/event-stream" in headers["content-type"]
    )
    assert status == 200 and body.rstrip().endswith(b"data: [DONE]")


def test_requests_on_a_kept_alive_connection(gateway: Gateway, conn: Conn) -> None:
    for i in range(3):
        conn.send(_chat(gateway, f"turn {i}"))
        status, headers, body = conn.response()
        assert status == 200 and f"turn {i}" in _text(body)
        assert "connection" not in headers


def test_pipelined_requests_are_answered_in_order(gateway: Gateway, conn: Conn) -> None:
    conn.send(_chat(gateway, "first") + _chat(gateway, "second") + _chat(gateway, "third"))
    answers = [conn.response() for _ in range(3)]
    assert [a[0] for a in answers] == [200, 200, 200]
    assert ["first" in _text(a[2]) for a in answers] == [True, False, False]
    assert ["second" in _text(a[2]) for a in answers] == [False, True, False]
    assert "third" in _text(answers[2][2])
    assert len({a[1]["x-request-id"] for a in answers}) == 3


def test_pipelined_after_a_stream(gateway: Gateway, conn: Conn) -> None:
    conn.send(_chat(gateway, "streamed", stream=True) + _chat(gateway, "whole"))
    status, _, streamed = conn.response()
    assert status == 200 and b"streamed" in streamed and streamed.endswith(b"data: [DONE]\n\n")
    status, _, whole = conn.response()
    assert status == 200 and "whole" in _text(whole)


def test_head_gets_the_head_alone_and_the_connection_goes_on(conn: Conn) -> None:
    conn.send(b"HEAD /healthz HTTP/1.1\r\nhost: gw\r\n\r\n")
    status, headers, _ = conn.response(head_only=True)  # litestar: GET routes only
    assert status == 405 and int(headers["content-length"]) > 0
    conn.send(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n")
    status, _, body = conn.response()  # nothing of a body was sent after the HEAD's head
    assert status == 200 and orjson.loads(body) == {"status": "ok"}
    assert conn.buf == b""


def test_100_continue_is_sent_when_the_body_is_read(gateway: Gateway, conn: Conn) -> None:
    request = _chat(gateway, "after continue", head="expect: 100-continue\r\n")
    head, _, body = request.partition(b"\r\n\r\n")
    conn.send(head + b"\r\n\r\n")
    assert conn.response() == (100, {}, b"")
    conn.send(body)
    status, _, answer = conn.response()
    assert status == 200 and "after continue" in _text(answer)


def test_a_chunked_request_body(gateway: Gateway, conn: Conn) -> None:
    request = _chat(gateway, "sent in chunks")
    head, _, body = request.partition(b"\r\n\r\n")
    head = head.replace(f"content-length: {len(body)}".encode(), b"transfer-encoding: chunked")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:10], body[10:]))
    conn.send(head + b"\r\n\r\n" + chunks)
    time.sleep(0.05)  # the last chunk later, in its own segment
    conn.send(b"0\r\n\r\n")
    status, _, answer = conn.response()
    assert status == 200 and "sent in chunks" in _text(answer)


def test_connection_close_is_honoured(gateway: Gateway, conn: Conn) -> None:
    conn.send(_chat(gateway, "bye", head="connection: close\r\n"))
    status, headers, _ = conn.response()
    assert status == 200 and headers["connection"] == "close"
    assert conn.closed()


def test_http_1_0_is_answered_and_closed(conn: Conn) -> None:
    conn.send(b"GET /healthz HTTP/1.0\r\n\r\n")
    status, headers, _ = conn.response()
    assert status == 200 and headers["connection"] == "close"
    assert conn.closed()


def test_an_unparsable_request_gets_400_and_is_closed(conn: Conn) -> None:
    conn.send(b"NOT HTTP AT ALL\r\n\r\n")
    status, headers, body = conn.response()
    assert (status, body) == (400, b"Invalid HTTP request received.")
    assert headers["connection"] == "close"
    assert conn.closed()


def test_a_client_that_stops_reading_gets_the_whole_stream(
    gateway: Gateway, upstream: FakeUpstream, conn: Conn
) -> None:
    """Flow control: the gateway's writes pause on a full buffer and resume as it drains."""
    pieces = tuple(f"{i:04d}" + "x" * 10_000 + " " for i in range(1000))  # 10 MB
    upstream.script("gpt-up", Reply(pieces=pieces))
    # More than the kernel's buffers hold with a small receive buffer: the rest waits in the
    # gateway's transport, past its high-water mark (pause_writing, then drain).
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    conn.send(_chat(gateway, "big", stream=True))
    time.sleep(1.0)  # not reading: the gateway's buffer fills
    status, _, body = conn.response()
    assert status == 200 and body.endswith(b"data: [DONE]\n\n")
    deltas = [
        orjson.loads(line[6:])["choices"][0]["delta"].get("content", "")
        for line in body.split(b"\n\n")
        if line.startswith(b"data: {")
    ]
    assert "".join(deltas) == "".join(pieces)


def test_a_stream_in_flight_ends_whole_on_shutdown(upstream: FakeUpstream, tmp_path: Path) -> None:
    """SIGTERM: no new connection is taken, an idle one is closed, a stream goes on to its
    end (uvicorn's server drains, the protocol closes each connection after its answer)."""
    config = write_yaml(tmp_path / "gateway.yaml", gateway_config(upstream))
    write_yaml(tmp_path / "policies" / "chat_app.yaml", POLICIES["chat_app"])
    key = new_key(tmp_path / "keys.yaml", "alice", ["analyst"])
    proc, url = serve(config, tmp_path / "serve.log", env=UPSTREAM_KEYS)
    try:
        upstream.script("gpt-up", SlowStream(events=10, interval=0.1))
        gw = Gateway(url, key, "", tmp_path)
        idle, streaming = Conn(url), Conn(url)
        idle.send(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n")
        assert idle.response()[0] == 200
        streaming.send(_chat(gw, "slow", stream=True))
        streaming.buf = streaming.recv()  # the head and the first event
        proc.send_signal(signal.SIGTERM)
        assert idle.closed()
        status, _, body = streaming.response()
        assert status == 200 and body.count(b"tick") == 10
        assert body.endswith(b"data: [DONE]\n\n")
        assert streaming.closed()
        # uvicorn's server raises the signal it caught again once it has shut down.
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        kill_group(proc)
