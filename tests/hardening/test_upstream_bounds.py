"""What one upstream answer may make the gateway hold or keep open (gateway.yaml ``upstream``),
and answers of shapes nobody expected: each ends in the client's API shape with its reason,
recorded, and the upstream connection dropped (issue 23's table, upstream rows)."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from tests.fakes.upstream import FakeUpstream, Flood, RawAnswer, RawStream, SlowStream
from tests.hardening.conftest import Bounded
from tests.support.clients import TLS

HI = [{"role": "user", "content": "hi"}]


def _ask(gw: Bounded, workflow: str, stream: bool, anthropic: bool = False) -> httpx.Response:
    if anthropic:
        path = f"/w/{workflow}/v1/messages"
        body = {"model": "claude-test", "max_tokens": 50, "messages": HI, "stream": stream}
    else:
        path = f"/w/{workflow}/v1/chat/completions"
        body = {"model": "gpt-test", "messages": HI, "stream": stream}
    return httpx.post(
        gw.url + path,
        json=body,
        headers={"authorization": f"Bearer {gw.key}"},
        timeout=30,
        verify=TLS,
    )


def _events(answer: httpx.Response) -> list[bytes]:
    return [e for e in answer.content.split(b"\n\n") if e.strip()]


def _stream_error(answer: httpx.Response) -> dict[str, object]:
    """The error event that ends the stream: the last event, in the client's API shape."""
    last = _events(answer)[-1]
    data = orjson.loads(last.partition(b"data: ")[2])
    assert isinstance(data, dict) and "error" in data, last
    error = data["error"]
    assert isinstance(error, dict)
    return error


def _openai_chunk(**choice: object) -> bytes:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-up", "choices": [choice]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def test_a_huge_answer_is_refused_without_holding_it(
    bounded: Bounded, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Flood(200 * 1024 * 1024))
    started = time.monotonic()
    answer = _ask(bounded, "plain", stream=False)
    assert time.monotonic() - started < 3
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "upstream.too_large"
    assert bounded.record(answer.headers["x-request-id"]).reasons == ["upstream.too_large"]
    assert upstream.wait_for_disconnects(1)


@pytest.mark.parametrize("workflow", ["plain", "guarded"])
def test_a_huge_event_ends_the_stream(
    bounded: Bounded, upstream: FakeUpstream, workflow: str
) -> None:
    upstream.script("gpt-up", Flood(200 * 1024 * 1024))
    started = time.monotonic()
    answer = _ask(bounded, workflow, stream=True)
    assert time.monotonic() - started < 3
    assert _stream_error(answer)["code"] == "upstream.too_large"
    assert upstream.wait_for_disconnects(1)


def test_an_endless_stream_is_ended_at_the_stream_timeout(
    bounded: Bounded, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", SlowStream(events=1000, interval=0.05))
    started = time.monotonic()
    answer = _ask(bounded, "plain", stream=True)
    assert 1.9 < time.monotonic() - started < 4  # upstream.stream_timeout_s: 2
    assert b"tick5 " in answer.content  # what came before is relayed
    assert _stream_error(answer)["code"] == "upstream.stream_timeout"
    assert upstream.wait_for_disconnects(1)
    reasons = bounded.record(answer.headers["x-request-id"]).reasons
    assert reasons == ["upstream.stream_timeout"]


def test_a_stalled_stream_is_ended_at_the_idle_timeout(
    bounded: Bounded, upstream: FakeUpstream
) -> None:
    upstream.script("claude-up", SlowStream(events=3, interval=1.5))
    started = time.monotonic()
    answer = _ask(bounded, "plain", stream=True, anthropic=True)
    assert time.monotonic() - started < 2.5  # upstream.idle_timeout_s: 1
    last = _events(answer)[-1]
    assert last.startswith(b"event: error\n")  # Anthropic's error event
    error = orjson.loads(last.partition(b"data: ")[2])
    assert error["type"] == "error"
    assert error["error"]["code"] == "upstream.stream_timeout"
    assert upstream.wait_for_disconnects(1)


@pytest.mark.parametrize("workflow", ["plain", "guarded"])
@pytest.mark.parametrize(
    "chunk",
    [
        _openai_chunk(index=[1], delta={"content": "hi"}),
        _openai_chunk(index=0, delta=["content"]),
        _openai_chunk(index=0, delta={"content": ["a"]}),
        _openai_chunk(index=0, delta={"tool_calls": [{"index": {}, "function": []}]}),
        b'data: {"choices": "none"}\n\n',
        b'data: {"choices": [7]}\n\n',
        b'data: {"usage": [1]}\n\n',
    ],
)
def test_an_unreadable_chunk_ends_the_stream_with_an_error_event(
    bounded: Bounded, upstream: FakeUpstream, workflow: str, chunk: bytes
) -> None:
    events = (_openai_chunk(index=0, delta={"content": "Hello "}), chunk, b"data: [DONE]\n\n")
    upstream.script("gpt-up", RawStream(events))
    answer = _ask(bounded, workflow, stream=True)
    assert answer.status_code == 200
    last = _events(answer)[-1]
    if last == b"data: [DONE]":  # a shape the readers tolerate: relayed as it came
        assert workflow == "plain"
        return
    assert _stream_error(answer)["code"] in (
        "boundary.answer_shape",
        "boundary.unknown_answer_shape",
        "upstream.broken_stream",
    )


@pytest.mark.parametrize("workflow", ["plain", "guarded"])
def test_a_stream_without_its_final_event_ends_with_an_error_event(
    bounded: Bounded, upstream: FakeUpstream, workflow: str
) -> None:
    events = (_openai_chunk(index=0, delta={"content": "Hello there, how are you"}),)
    upstream.script("gpt-up", RawStream(events))
    answer = _ask(bounded, workflow, stream=True)
    assert _stream_error(answer)["code"] == "upstream.broken_stream"
    assert b"[DONE]" not in answer.content
    record = bounded.record(answer.headers["x-request-id"])
    assert "upstream.broken_stream" in record.reasons


@pytest.mark.parametrize(
    "body",
    [
        b'{"choices": [{"index": [1], "message": {"content": "mail alice@example.com"}}]}',
        b'{"choices": [{"index": 0, "message": ["content"]}]}',
        b'{"choices": [{"index": 0, "message": {"content": "mail alice@example.com"}}], "x": '
        + b"[" * 300
        + b"]" * 300
        + b"}",
    ],
    ids=["index_list", "message_list", "too_deep_to_write"],
)
def test_an_unreadable_answer_is_refused_never_a_500(
    bounded: Bounded, upstream: FakeUpstream, body: bytes
) -> None:
    upstream.script("gpt-up", RawAnswer(body))
    answer = _ask(bounded, "guarded", stream=False)
    assert answer.status_code != 500, answer.text
    assert b"alice@example.com" not in answer.content
    if answer.status_code != 200:
        code = answer.json()["error"]["code"]
        assert code == "boundary.unknown_answer_shape", answer.text
        assert code in bounded.record(answer.headers["x-request-id"]).reasons
