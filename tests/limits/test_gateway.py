"""The limits step in a real gateway, driven by the official SDKs, on both backends:
exact request counts, 429s in each API's own shape, x-ratelimit headers on every response,
budgets reserved while a request runs and settled when it ends (streams, cut streams)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import anthropic
import openai
import pytest

from gateway.audit import AuditRecord
from tests.fakes.upstream import FakeUpstream, Reply, SlowStream
from tests.limits.conftest import LimitedGateway

HI = [{"role": "user", "content": "hi"}]


def record(gw: LimitedGateway, request_id: str) -> AuditRecord:
    with sqlite3.connect(gw.root / "audit.db") as db:
        rows = db.execute(
            "SELECT body FROM audit_records WHERE request_id = ?", (request_id,)
        ).fetchall()
    assert len(rows) == 1
    return AuditRecord.from_json(rows[0][0])


def seconds(duration: str) -> float:
    """``1m0s`` / ``59.955s`` / ``17ms`` as seconds."""
    if duration.endswith("ms"):
        return float(duration[:-2]) / 1000
    minutes, _, rest = duration.rpartition("m")
    return 60 * float(minutes or 0) + float(rest.rstrip("s"))


def eventually(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_requests_per_minute_admits_exactly_the_limit_with_headers(
    limited: LimitedGateway,
) -> None:
    client = limited.openai("rated", limited.key())
    seen = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=HI)
        seen.append(raw.headers)
    assert [h["x-ratelimit-remaining-requests"] for h in seen] == ["2", "1", "0"]
    assert {h["x-ratelimit-limit-requests"] for h in seen} == {"3"}
    assert 59.0 <= seconds(seen[-1]["x-ratelimit-reset-requests"]) <= 60.0  # e.g. 59.955s
    assert {h["x-ratelimit-limit-tokens"] for h in seen} == {"100000"}
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-test", messages=HI)
    err = caught.value
    assert err.status_code == 429
    assert err.code == "limits.rate_exceeded"
    assert 1 <= int(err.response.headers["retry-after"]) <= 20
    assert err.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.response.headers["x-gateway-decision"] == "deny; reason=limits.rate_exceeded"


def test_anthropic_refusal_in_its_own_shape(limited: LimitedGateway) -> None:
    client = limited.anthropic("rated", limited.key())
    for _ in range(3):
        client.messages.create(model="claude-test", max_tokens=50, messages=HI)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="claude-test", max_tokens=50, messages=HI)
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["code"] == "limits.rate_exceeded"
    assert "retry-after" in caught.value.response.headers


def test_other_callers_have_their_own_counter(limited: LimitedGateway) -> None:
    first, second = limited.openai("rated", limited.key()), limited.openai("rated", limited.key())
    for _ in range(3):
        first.chat.completions.create(model="gpt-test", messages=HI)
    second.chat.completions.create(model="gpt-test", messages=HI)


def test_whole_answer_settles_real_usage(limited: LimitedGateway, upstream: FakeUpstream) -> None:
    raw = limited.openai("budgeted", limited.key()).chat.completions.with_raw_response.create(
        model="gpt-test", messages=HI
    )
    usage = raw.parse().usage
    assert usage is not None
    r = record(limited, raw.headers["x-request-id"])
    assert r.actual_usd == pytest.approx((usage.prompt_tokens + 2 * usage.completion_tokens) / 1e6)
    assert r.reserved_usd is not None and r.reserved_usd >= 200 / 1e6  # 100 out tokens at 2
    assert r.reserved_usd > r.actual_usd


def test_budget_is_held_while_a_stream_runs_and_freed_after(
    limited: LimitedGateway, upstream: FakeUpstream
) -> None:
    client = limited.openai("budgeted", limited.key())
    upstream.script("gpt-up", SlowStream(events=10, interval=0.1))
    with client.chat.completions.create(model="gpt-test", messages=HI, stream=True) as stream:
        chunks = iter(stream)
        next(chunks)
        with pytest.raises(openai.RateLimitError) as caught:  # two reservations do not fit
            client.chat.completions.create(model="gpt-test", messages=HI)
        assert caught.value.code == "limits.budget_exhausted"
        rest = list(chunks)
    # the client did not ask for usage: the chunk the gateway asked for is not passed on
    assert all(c.usage is None for c in rest)
    assert all(c.choices for c in rest)
    sent = upstream.requests_for("gpt-up")[0].body
    assert sent["stream_options"] == {"include_usage": True}
    client.chat.completions.create(model="gpt-test", messages=HI)  # settled: room again


def test_a_client_leaving_mid_stream_frees_its_reservation(
    limited: LimitedGateway, upstream: FakeUpstream
) -> None:
    client = limited.openai("budgeted", limited.key())
    upstream.script("gpt-up", SlowStream(events=100, interval=0.05))
    with client.chat.completions.create(model="gpt-test", messages=HI, stream=True) as stream:
        next(iter(stream))
    assert upstream.wait_for_disconnects(1)

    def admitted() -> bool:
        try:
            client.chat.completions.create(model="gpt-test", messages=HI)
        except openai.RateLimitError:
            return False
        return True

    assert eventually(admitted)


def test_client_asked_usage_is_kept(limited: LimitedGateway, upstream: FakeUpstream) -> None:
    client = limited.openai("budgeted", limited.key())
    chunks = list(
        client.chat.completions.create(
            model="gpt-test",
            messages=HI,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].choices == []


def test_anthropic_stream_settles_on_message_delta_usage(limited: LimitedGateway) -> None:
    client = limited.anthropic("budgeted", limited.key())
    with client.messages.with_streaming_response.create(
        model="claude-test", max_tokens=100, messages=HI, stream=True
    ) as response:
        request_id = response.headers["x-request-id"]
        text = b"".join(response.iter_bytes())
    assert b"message_stop" in text
    r = record(limited, request_id)
    assert r.tokens_in is not None and r.tokens_out is not None
    assert r.actual_usd == pytest.approx((r.tokens_in + 2 * r.tokens_out) / 1e6)
    assert r.tokens_out == 2  # "echo: hi", from message_delta (message_start said 1)


def test_clamp_lowers_max_tokens_to_what_the_budget_pays_for(
    limited: LimitedGateway, upstream: FakeUpstream
) -> None:
    client = limited.openai("clamped", limited.key())
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=HI)
    assert raw.headers["x-gateway-decision"] == "transform; reason=limits.max_tokens_clamped"
    sent = upstream.requests_for("gpt-up")[0].body["max_completion_tokens"]
    # 300 micro-USD minus about 21 for the input, at 2 per output token: about 139, not 1000
    assert 120 <= sent <= 145


def test_shadow_mode_records_the_refusal_and_lets_it_pass(limited: LimitedGateway) -> None:
    client = limited.openai("shadowed", limited.key())
    client.chat.completions.create(model="gpt-test", messages=HI)
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=HI)
    assert raw.http_response.status_code == 200
    assert raw.headers["x-gateway-decision"] == "allow; reason=limits.rate_exceeded"
    assert raw.headers["x-ratelimit-remaining-requests"] == "0"
    assert record(limited, raw.headers["x-request-id"]).reasons == ["limits.rate_exceeded"]


def test_clamp_lowers_the_field_the_client_used(
    limited: LimitedGateway, upstream: FakeUpstream
) -> None:
    client = limited.openai("clamped", limited.key())
    client.chat.completions.create(model="gpt-test", messages=HI, max_tokens=1000)
    sent = upstream.requests_for("gpt-up")[0].body
    assert "max_completion_tokens" not in sent  # never both: OpenAI refuses that
    assert 120 <= sent["max_tokens"] <= 145


def test_translated_stream_settles_and_hides_the_usage_chunk(limited: LimitedGateway) -> None:
    """An OpenAI client streaming from an Anthropic model: the translated stream ends with the
    usage chunk the gateway asked for, which the client does not get but the budget uses."""
    client = limited.openai("budgeted", limited.key())
    with client.chat.completions.with_streaming_response.create(
        model="claude-test", messages=HI, stream=True
    ) as response:
        request_id = response.headers["x-request-id"]
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    assert lines and all('"choices":[]' not in line for line in lines)
    r = record(limited, request_id)
    assert r.model_used == "claude-test" and r.tokens_out == 2
    assert r.tokens_in is not None
    assert r.actual_usd == pytest.approx((r.tokens_in + 2 * r.tokens_out) / 1e6)


def test_an_answer_refused_by_a_quality_check_is_paid_for_too(
    limited: LimitedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Reply("maybe blue", logprob=-2.5))  # refused: low confidence
    upstream.script("gpt-backup-up", Reply("surely red", logprob=-0.1))
    client = limited.openai("checked", limited.key())
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=HI)
    assert raw.parse().choices[0].message.content == "surely red"
    r = record(limited, raw.headers["x-request-id"])
    assert r.model_used == "gpt-backup"
    # Each answer: 1 prompt token at 1 and 2 completion tokens at 2 micro-USD.
    assert r.actual_usd == pytest.approx(2 * (1 + 2 * 2) / 1e6)
    # The worst case was reserved once per model that may answer: 2 x (~21 in + 100 out at 2)
    assert r.reserved_usd is not None and 2 * 220e-6 <= r.reserved_usd <= 2 * 230e-6
