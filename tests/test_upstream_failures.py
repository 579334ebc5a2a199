"""Unhappy upstreams: retries, timeouts, fallback models, cut streams, clients that leave."""

from __future__ import annotations

import time

import anthropic
import httpx2
import openai
import pytest

from tests.conftest import Gateway
from tests.fakes.upstream import (
    CutStream,
    FakeUpstream,
    InvalidJson,
    Reply,
    SlowStream,
    Stall,
    Status,
)

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529])  # 529: Anthropic is overloaded
def test_server_errors_are_retried_then_succeed(
    gateway: Gateway, upstream: FakeUpstream, status: int
) -> None:
    upstream.script("gpt-up", Status(status), Status(status), Reply("third time lucky"))
    answer = gateway.openai().chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "third time lucky"
    assert len(upstream.requests_for("gpt-up")) == 3
    assert upstream.requests_for("gpt-backup-up") == []


def test_retry_after_is_honoured(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("claude-up", Status(429, retry_after=0.6), Reply("after the wait"))
    started = time.monotonic()
    message = gateway.anthropic().messages.create(
        model="claude-test", max_tokens=5, messages=MESSAGES
    )  # type: ignore[arg-type]
    assert message.content[0].type == "text" and message.content[0].text == "after the wait"
    assert time.monotonic() - started >= 0.6


def test_fallback_model_after_retries_are_exhausted(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Status(503), Status(503), Status(503))
    upstream.script("gpt-backup-up", Reply("from the backup"))
    answer = gateway.openai().chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "from the backup"
    assert [r.body["model"] for r in upstream.received] == ["gpt-up"] * 3 + ["gpt-backup-up"]


def test_fallback_follows_the_policy_order_across_apis(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    # chat_app falls back to gpt-backup first: an OpenAI model, reached through translation.
    upstream.script("claude-up", *[Status(500)] * 3)
    upstream.script("gpt-backup-up", Reply("openai backup"))
    message = gateway.anthropic().messages.create(
        model="claude-test", max_tokens=5, messages=MESSAGES
    )  # type: ignore[arg-type]
    assert message.content[0].type == "text" and message.content[0].text == "openai backup"
    assert [r.path for r in upstream.received] == ["/v1/messages"] * 3 + ["/v1/chat/completions"]
    assert upstream.requests_for("claude-backup-up") == []


def test_everything_down_is_502_without_client_retry(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", *[Status(500)] * 3)
    upstream.script("gpt-backup-up", *[Status(500)] * 3)
    upstream.script("claude-backup-up", *[Status(500)] * 3)  # reached through translation
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.openai().chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream.error"
    headers = caught.value.response.headers
    assert headers["x-gateway-decision"] == "error; reason=upstream.error"
    assert headers["x-should-retry"] == "false"  # the gateway already retried: no storm
    assert len(upstream.received) == 9


def test_read_timeout_retried_then_504(gateway: Gateway, upstream: FakeUpstream) -> None:
    # chat_app: read timeout 0.5 s, 2 retries, total deadline 5 s, then the backup models.
    upstream.script("claude-up", *[Stall(2)] * 3)
    upstream.script("gpt-backup-up", *[Stall(2)] * 3)
    upstream.script("claude-backup-up", *[Stall(2)] * 3)
    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as caught:
        gateway.anthropic().messages.create(model="claude-test", max_tokens=5, messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 504
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["code"] == "upstream.timeout"
    assert len(upstream.requests_for("claude-up")) == 3
    assert time.monotonic() - started < 5.5


def test_total_deadline_bounds_retries_and_fallbacks(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    # strict: total deadline 1 s, no read timeout: one stalled attempt uses it all.
    upstream.script("gpt-up", Stall(3))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.openai("strict").chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream.timeout"
    assert 0.9 <= elapsed < 1.6
    assert len(upstream.received) == 1


def test_upstream_refusal_is_relayed_and_not_retried(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Status(400))
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.response.headers["x-gateway-decision"] == "error; reason=upstream.rejected"
    assert len(upstream.received) == 1


def test_refused_upstream_credentials_are_a_gateway_fault(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Status(401))
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.openai().chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream.auth_failed"
    assert "sk-upstream" not in caught.value.response.text


def test_invalid_json_answer_is_not_relayed(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", InvalidJson())
    upstream.script("gpt-backup-up", InvalidJson())
    upstream.script("claude-backup-up", InvalidJson())
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.openai().chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.code == "upstream.error"


def test_stream_errors_before_the_first_byte_are_retried(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Status(500), Reply("streamed after retry"))
    stream = gateway.openai().chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,  # type: ignore[arg-type]
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "streamed after retry"


def test_cut_openai_stream_ends_with_an_error_event(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", CutStream(after=2))
    stream = gateway.openai().chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,  # type: ignore[arg-type]
    )
    received: list[str] = []

    def drain() -> None:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError) as caught:
        drain()
    assert "".join(received) == "part0 part1 "
    assert "ended unexpectedly" in str(caught.value.message)
    assert len(upstream.received) == 1  # never retried once bytes reached the client


def test_cut_anthropic_stream_ends_with_an_error_event(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("claude-up", CutStream(after=1))

    def drain() -> None:
        with gateway.anthropic().messages.stream(
            model="claude-test",
            max_tokens=5,
            messages=MESSAGES,  # type: ignore[arg-type]
        ) as stream:
            for _ in stream:
                pass

    with pytest.raises(anthropic.APIStatusError) as caught:
        drain()
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["code"] == "upstream.broken_stream"


def test_client_disconnect_cancels_the_upstream_request(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", SlowStream(events=100, interval=0.05))
    headers = {"authorization": f"Bearer {gateway.analyst_key}"}
    body = {"model": "gpt-test", "messages": MESSAGES, "stream": True}
    with httpx2.stream(
        "POST", f"{gateway.openai_url()}/chat/completions", json=body, headers=headers
    ) as response:
        lines = response.iter_lines()
        seen = [next(lines) for _ in range(3)]
    assert any(line.startswith("data: ") for line in seen)
    assert upstream.wait_for_disconnects(1, timeout=3)


def test_stream_events_arrive_as_the_upstream_sends_them(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", SlowStream(events=10, interval=0.15))
    started = time.monotonic()
    stream = gateway.openai().chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,  # type: ignore[arg-type]
    )
    arrivals = [
        time.monotonic() - started for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert len(arrivals) == 10
    assert arrivals[0] < 0.5  # the first token long before the last one was produced
    assert arrivals[-1] - arrivals[0] >= 1.2
