"""What one client may send (gateway.yaml ``server``): each bound answered with its status and
reason, fast, while the gateway keeps serving the others (issue 23's table, client rows)."""

from __future__ import annotations

import contextlib
import time

import httpx
import orjson
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.hardening.conftest import SERVER, Bounded, read_response
from tests.support.clients import TLS

HI = [{"role": "user", "content": "hi"}]


def _post(gw: Bounded, body: bytes, path: str = "/w/plain/v1/chat/completions") -> httpx.Response:
    return httpx.post(
        gw.url + path,
        content=body,
        headers={"authorization": f"Bearer {gw.key}", "content-type": "application/json"},
        timeout=30,
        verify=TLS,
    )


def _still_serving(gw: Bounded) -> None:
    answer = _post(gw, orjson.dumps({"model": "gpt-test", "messages": HI}))
    assert answer.status_code == 200, answer.text


def _refused(gw: Bounded, body: object, code: str, status: int = 400, **kw: str) -> None:
    started = time.monotonic()
    answer = _post(gw, body if isinstance(body, bytes) else orjson.dumps(body), **kw)
    assert time.monotonic() - started < 2
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code" if "chat" in answer.url.path else "type"]
    assert code in answer.text
    assert gw.record(answer.headers["x-request-id"]).reasons == [code]


@pytest.mark.parametrize("size", [32 * 1024 * 1024, 8 * 1024 * 1024, 20 * 1024])
@pytest.mark.parametrize("keyed", [False, True])
def test_an_oversized_head_gets_431_before_it_is_parsed(
    bounded: Bounded, size: int, keyed: bool
) -> None:
    head = b"POST /w/plain/v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
    if keyed:
        head += f"authorization: Bearer {bounded.key}\r\n".encode()
    started = time.monotonic()
    with bounded.connect() as sock:
        sock.sendall(head + b"x-big: ")
        # The gateway may close while the rest is on its way.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"a" * size + b"\r\n\r\n")
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"request.header_too_large" in answer
    assert time.monotonic() - started < 5
    _still_serving(bounded)


def test_a_head_just_under_the_bound_is_served(bounded: Bounded) -> None:
    filler = "a" * (SERVER["max_header_bytes"] - 1024)  # type: ignore[operator]
    answer = httpx.post(
        bounded.url + "/w/plain/v1/chat/completions",
        json={"model": "gpt-test", "messages": HI},
        headers={"authorization": f"Bearer {bounded.key}", "x-filler": filler},
    )
    assert answer.status_code == 200


def test_a_slow_head_is_cut_at_its_timeout(
    bounded: Bounded, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="gateway.protocol")
    started = time.monotonic()
    with bounded.connect() as sock:
        sock.sendall(b"POST /w/plain/v1/chat/completions HTTP/1.1\r\nho")
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"request.head_timeout" in answer
    assert 0.9 < time.monotonic() - started < 3
    counted = [r.getMessage() for r in caplog.records if r.name == "gateway.protocol"]
    assert any("cut: request.head_timeout (" in m and " so far)" in m for m in counted), counted


def test_a_slow_head_on_a_kept_alive_connection_is_cut_at_its_timeout(bounded: Bounded) -> None:
    """The head's bound starts again with the next request's first byte, whatever deadline
    the connection's one timer was armed for before (the keep-alive wait's, 5 s)."""
    with bounded.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        time.sleep(0.5)
        started = time.monotonic()
        sock.sendall(b"POST /w/plain/v1/chat/completions HTTP/1.1\r\nho")
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"request.head_timeout" in answer
    assert 0.9 < time.monotonic() - started < 3


def test_a_silent_connection_is_closed_at_the_head_timeout(bounded: Bounded) -> None:
    started = time.monotonic()
    with bounded.connect() as sock:
        assert read_response(sock) == b""
    assert 0.9 < time.monotonic() - started < 3


def test_a_slow_body_gets_408_in_the_api_shape_and_a_record(bounded: Bounded) -> None:
    head = (
        "POST /w/plain/v1/messages HTTP/1.1\r\nhost: x\r\n"
        f"x-api-key: {bounded.key}\r\ncontent-type: application/json\r\n"
        "content-length: 1000\r\n\r\n"
    )
    started = time.monotonic()
    with bounded.connect() as sock:
        sock.sendall(head.encode() + b'{"model": ')
        answer = read_response(sock)  # the gateway answers, then closes
    assert 0.9 < time.monotonic() - started < 3
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 408")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert orjson.loads(body)["type"] == "error"  # Anthropic's error shape
    assert b"request.body_timeout" in headers
    request_id = next(
        line.split(b": ")[1] for line in headers.split(b"\r\n") if line.startswith(b"x-request-id")
    )
    assert bounded.record(request_id.decode()).reasons == ["request.body_timeout"]


def test_many_slow_clients_are_all_cut(bounded: Bounded) -> None:
    """25 clients stalling in the head, 25 in the body: all answered 408 and closed."""
    socks = [bounded.connect() for _ in range(50)]
    body_head = (
        "POST /w/plain/v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
        f"authorization: Bearer {bounded.key}\r\ncontent-length: 100\r\n\r\n{{"
    ).encode()
    try:
        for i, sock in enumerate(socks):
            sock.sendall(b"POST /w/plain/v1/chat/completions HTTP/1.1\r\n" if i % 2 else body_head)
        started = time.monotonic()
        _still_serving(bounded)  # meanwhile
        for i, sock in enumerate(socks):
            answer = read_response(sock)
            assert answer.startswith(b"HTTP/1.1 408 ")
            assert (b"request.head_timeout" if i % 2 else b"request.body_timeout") in answer
        assert time.monotonic() - started < 3
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("depth", [65, 254, 255, 600, 1024])
def test_deep_json_gets_400_too_deep_never_500(bounded: Bounded, depth: int) -> None:
    nested = b"[" * (depth - 1) + b"]" * (depth - 1)  # the body itself is one level
    body = b'{"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "x": '
    _refused(bounded, body + nested + b"}", "request.too_deep")


def test_json_at_the_depth_bound_is_served(bounded: Bounded) -> None:
    schema: dict[str, object] = {"type": "string"}
    for _ in range(25):  # two levels each: 51 with the tool's own
        schema = {"type": "object", "properties": {"a": schema}}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    answer = _post(bounded, orjson.dumps({"model": "gpt-test", "messages": HI, "tools": [tool]}))
    assert answer.status_code == 200, answer.text


def test_a_body_too_deep_for_the_parser_is_refused_too(bounded: Bounded) -> None:
    _refused(bounded, b'{"x": ' + b"[" * 2000 + b"]" * 2000 + b"}", "request.invalid_json")


def test_a_long_string_is_refused(bounded: Bounded) -> None:
    digits = "1234567890" * 400_000  # 4 MB of digits in one message
    _refused(
        bounded,
        {"model": "gpt-test", "messages": [{"role": "user", "content": digits}]},
        "request.string_too_long",
    )
    wide = "é" * (SERVER["max_string_bytes"] // 2 + 1)  # type: ignore[operator]
    _refused(
        bounded,
        {"model": "gpt-test", "messages": [{"role": "user", "content": wide}]},
        "request.string_too_long",
    )


def test_ten_thousand_messages_are_refused(bounded: Bounded) -> None:
    _refused(bounded, {"model": "gpt-test", "messages": HI * 10_000}, "request.too_many_messages")
    _refused(
        bounded,
        {"model": "claude-test", "max_tokens": 10, "messages": HI * 10_000},
        "request.too_many_messages",
        path="/w/plain/v1/messages",
    )


def test_too_many_messages_are_refused_before_the_surface_reads_them(bounded: Bounded) -> None:
    # The last message is one the surface would refuse as invalid: counted first, the body
    # never costs the walk that builds its slots (10,000 messages held the loop 80 ms).
    messages = [*HI * 10_000, {"role": "user", "content": 5}]
    _refused(bounded, {"model": "gpt-test", "messages": messages}, "request.too_many_messages")


def test_too_many_parts_and_tools_are_refused(bounded: Bounded) -> None:
    parts = [{"type": "text", "text": "x"}] * 120
    _refused(
        bounded,
        {"model": "gpt-test", "messages": [{"role": "user", "content": parts}] * 2},
        "request.too_many_parts",
    )
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    _refused(
        bounded,
        {"model": "gpt-test", "messages": HI, "tools": [tool] * 17},
        "request.too_many_tools",
    )


def test_requests_within_the_bounds_are_served(bounded: Bounded, upstream: FakeUpstream) -> None:
    parts = [{"type": "text", "text": "x" * 1000}] * 100
    answer = _post(
        bounded,
        orjson.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": parts}] * 2}),
    )
    assert answer.status_code == 200, answer.text
    assert len(upstream.requests_for("gpt-up")) == 1


def test_json_in_a_string_too_deep_to_write_back_is_inspected_as_text(
    bounded: Bounded, upstream: FakeUpstream
) -> None:
    arguments = "[" * 300 + '"mail me at alice@example.com"' + "]" * 300
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]
    answer = _post(
        bounded,
        orjson.dumps({"model": "gpt-test", "messages": messages}),
        path="/w/guarded/v1/chat/completions",
    )
    assert answer.status_code == 200, answer.text  # never a 500
    sent = upstream.requests_for("gpt-up")[-1].body["messages"][1]["tool_calls"][0]
    assert "alice@example.com" not in sent["function"]["arguments"]
