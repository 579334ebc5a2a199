"""Proves the fake speaks the real wire formats by pointing the official SDKs straight at it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from tests.support.clients import anthropic_client, openai_client

from .upstream import CutStream, FakeUpstream, InvalidJson, Reply, SlowStream, Stall, Status

GPT = "gpt-fake"
CLAUDE = "claude-fake"
MSGS: Any = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeUpstream) -> FakeUpstream:
    server.reset()
    return server


@pytest.fixture
def oai(fake: FakeUpstream) -> openai.OpenAI:
    return openai_client(base_url=f"{fake.base_url}/v1", api_key="x", max_retries=0)


@pytest.fixture
def ant(fake: FakeUpstream) -> anthropic.Anthropic:
    return anthropic_client(base_url=fake.base_url, api_key="x", max_retries=0)


def test_openai_non_stream(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model=GPT, messages=MSGS)
    assert r.choices[0].message.content == "echo: hello there"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == GPT
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (2, 3)
    rec = fake.requests_for(GPT)
    assert [x.path for x in rec] == ["/v1/chat/completions"]
    assert rec[0].headers["authorization"] == "Bearer x"
    assert rec[0].body["messages"] == MSGS


def test_openai_stream_with_usage(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.script(GPT, Reply("one two  three"))
    parts: Any = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    stream = oai.chat.completions.create(
        model=GPT, messages=parts, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two  three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


def test_anthropic_non_stream(fake: FakeUpstream, ant: anthropic.Anthropic) -> None:
    fake.script(CLAUDE, Reply("hi back"))
    m = ant.messages.create(model=CLAUDE, max_tokens=50, messages=MSGS)
    assert m.content[0].type == "text"
    assert m.content[0].text == "hi back"
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens == 2
    headers = fake.requests_for(CLAUDE)[0].headers
    # anthropic 2.x sends api_key as a Bearer token; older SDKs sent x-api-key.
    assert "Bearer x" in (headers.get("authorization"), f"Bearer {headers.get('x-api-key')}")


def test_anthropic_stream(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(model=CLAUDE, max_tokens=50, messages=MSGS) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "echo: hello there"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3


def test_models_list(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.script(GPT, Reply())
    assert {m.id for m in oai.models.list()} == {GPT, "fake-model"}


def test_status_500(fake: FakeUpstream, oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    fake.script(GPT, Status(500))
    fake.script(CLAUDE, Status(500))
    with pytest.raises(openai.InternalServerError) as e1:
        oai.chat.completions.create(model=GPT, messages=MSGS, stream=True)
    assert e1.value.type == "server_error"
    with pytest.raises(anthropic.InternalServerError) as e2:
        ant.messages.create(model=CLAUDE, max_tokens=5, messages=MSGS)
    error = {"type": "api_error", "message": "fake upstream error 500"}
    assert e2.value.body == {"type": "error", "error": error}


def test_status_429(fake: FakeUpstream, oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    fake.script(GPT, Status(429, retry_after=3))
    fake.script(CLAUDE, Status(429, retry_after=1.5))
    with pytest.raises(openai.RateLimitError) as e1:
        oai.chat.completions.create(model=GPT, messages=MSGS)
    assert e1.value.response.headers["retry-after"] == "3"
    with pytest.raises(anthropic.RateLimitError) as e2:
        ant.messages.create(model=CLAUDE, max_tokens=5, messages=MSGS)
    assert e2.value.response.headers["retry-after"] == "1.5"
    assert oai.chat.completions.create(model=GPT, messages=MSGS).choices  # queue drained


def test_cut_stream(fake: FakeUpstream, oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    fake.script(GPT, CutStream(after=2), CutStream())
    fake.script(CLAUDE, CutStream(after=2))
    got: list[str] = []

    def read_openai() -> None:
        for c in oai.chat.completions.create(model=GPT, messages=MSGS, stream=True):
            got.append(c.choices[0].delta.content or "")

    def read_anthropic() -> None:
        with ant.messages.stream(model=CLAUDE, max_tokens=5, messages=MSGS) as s:
            got.extend(s.text_stream)

    # openai wraps the broken chunked body in APIConnectionError; anthropic lets
    # httpx2.RemoteProtocolError escape unwrapped.
    with pytest.raises(openai.APIConnectionError):
        read_openai()
    with pytest.raises(openai.APIConnectionError):  # non-stream: truncated JSON body
        oai.chat.completions.create(model=GPT, messages=MSGS)
    with pytest.raises((anthropic.APIError, httpx2.HTTPError)):
        read_anthropic()
    assert "".join(got) == "part0 part1 " * 2
    assert fake.disconnects == 0


def test_slow_stream_disconnect(
    fake: FakeUpstream, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    fake.script(GPT, SlowStream(events=50, interval=0.05))
    fake.script(CLAUDE, SlowStream(events=50, interval=0.05))
    stream = oai.chat.completions.create(model=GPT, messages=MSGS, stream=True)
    next(iter(stream))
    stream.close()
    assert fake.wait_for_disconnects(1, timeout=3)
    with ant.messages.stream(model=CLAUDE, max_tokens=5, messages=MSGS) as s:
        next(iter(s.text_stream))
    assert fake.wait_for_disconnects(2, timeout=3)
    assert fake.disconnects == 2


def test_stall_and_invalid_json(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.script(GPT, Stall(0.3), InvalidJson())
    t0 = time.monotonic()
    oai.chat.completions.create(model=GPT, messages=MSGS)
    assert time.monotonic() - t0 >= 0.3
    with pytest.raises(ValueError, match="Expecting property name"):  # raw JSONDecodeError
        oai.chat.completions.create(model=GPT, messages=MSGS)


def test_stall_timeout_counts_and_stop_is_fast() -> None:
    fake = FakeUpstream()
    fake.start()
    fake.script(GPT, Stall(30), Stall(30))
    quick = openai_client(base_url=f"{fake.base_url}/v1", api_key="x", max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        quick.chat.completions.create(model=GPT, messages=MSGS)
    assert fake.wait_for_disconnects(1)
    patient = openai_client(base_url=f"{fake.base_url}/v1", api_key="x", max_retries=0)
    errors: list[Exception] = []

    def call() -> None:
        try:
            patient.chat.completions.create(model=GPT, messages=MSGS)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    fake.stop()
    assert time.monotonic() - t0 < 2
    caller.join(5)
    assert len(errors) == 1
    assert fake.disconnects == 1  # stop() cancelling a stall is not a client disconnect
