"""Period edges through the limits step with an injectable clock, on both backends: a
minute edge gives no second burst; a UTC day or month edge starts a fresh budget; a request
reserved before midnight is settled into the day it was admitted in."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from gateway import errors
from gateway.auth.principal import Principal
from gateway.config import ModelConfig
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.limits.keys import budget_key, counter_tag
from gateway.limits.step import Limits
from gateway.limits.store import Store
from gateway.policy.compile import CompiledPolicy, compile_policy
from gateway.policy.models import Policy
from gateway.surfaces import openai_chat

MODELS = {
    "gpt-test": ModelConfig(
        provider="openai", upstream_model="gpt-up", usd_per_mtok_in=1.0, usd_per_mtok_out=2.0
    )
}


class Clock:
    def __init__(self, when: str) -> None:
        self.now = 0.0
        self.at(when)

    def at(self, when: str) -> None:
        self.now = datetime.fromisoformat(when).replace(tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def policy(limits: dict[str, object]) -> CompiledPolicy:
    source = Policy.model_validate(
        {
            "workflow": "wf",
            "owner": "o@example.com",
            "access": {"roles": ["analyst"], "models": ["gpt-test"], "max_output_tokens": 100},
            "limits": limits,
        }
    )
    return compile_policy(source, "wf.yaml")


async def call(
    limits: Limits, compiled: CompiledPolicy, used: tuple[int, int] = (100, 100)
) -> None:
    """One request through admit and settle, as the pipeline runs them: (in, out) tokens used."""
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}
    request = openai_chat.parse(orjson.dumps(body))
    ctx = RequestContext("chat", "wf", principal=Principal("alice", frozenset({"analyst"})))
    await limits.admit(ctx, request, compiled)
    ctx.model_used = "gpt-test"
    ctx.tokens_in, ctx.tokens_out = used
    await limits.settle(ctx)


async def refused(limits: Limits, compiled: CompiledPolicy) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await call(limits, compiled)
    return caught.value


async def test_a_minute_edge_gives_no_second_burst(store: Store, prefix: str) -> None:
    clock = Clock("2026-03-10T11:59:59.900")
    limits = Limits(store, MODELS, prefix, clock)
    rated = policy({"rate": [{"per": "user", "requests_per_minute": 5}]})
    for _ in range(5):
        await call(limits, rated)
    clock.at("2026-03-10T12:00:00.100")
    err = await refused(limits, rated)
    assert err.reason is errors.LIMITS_RATE_EXCEEDED
    assert err.headers["retry-after"] == "12"  # one slot back every 12 s, 0.2 s gone
    clock.at("2026-03-10T12:00:11.900")
    await call(limits, rated)


async def test_a_utc_day_edge_starts_a_fresh_budget(store: Store, prefix: str) -> None:
    clock = Clock("2026-03-10T23:59:00")
    limits = Limits(store, MODELS, prefix, clock)
    daily = policy({"budget": [{"per": "user", "usd_per_day": 0.001}]})  # 1000 micro-USD
    for _ in range(3):
        await call(limits, daily)  # 100 in + 100 out at 1 and 2: 300 each
    err = await refused(limits, daily)  # 900 spent, a reservation of ~221 does not fit
    assert err.reason is errors.LIMITS_BUDGET_EXHAUSTED
    assert err.headers["retry-after"] == "60"  # until midnight UTC
    clock.at("2026-03-11T00:00:00")
    await call(limits, daily)


async def test_a_reservation_settles_into_the_day_it_was_made(store: Store, prefix: str) -> None:
    clock = Clock("2026-03-10T23:59:59.500")
    limits = Limits(store, MODELS, prefix, clock)
    daily = policy({"budget": [{"per": "user", "usd_per_day": 0.001}]})
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}
    ctx = RequestContext("chat", "wf", principal=Principal("alice", frozenset({"analyst"})))
    await limits.admit(ctx, openai_chat.parse(orjson.dumps(body)), daily)
    clock.at("2026-03-11T00:00:00.500")
    ctx.model_used, ctx.tokens_in, ctx.tokens_out = "gpt-test", 10, 20
    await limits.settle(ctx)
    before = budget_key(
        counter_tag(prefix, "wf", "user", "alice"), "wf", "day", "20260310", "user", "alice"
    )
    after = budget_key(
        counter_tag(prefix, "wf", "user", "alice"), "wf", "day", "20260311", "user", "alice"
    )
    usage = await store.usage([before, after])
    assert (usage[before].spent, usage[before].reserved) == (50, 0)
    assert after not in usage


async def test_a_utc_month_edge_starts_a_fresh_budget(store: Store, prefix: str) -> None:
    clock = Clock("2026-01-15T23:59:00")
    limits = Limits(store, MODELS, prefix, clock)
    monthly = policy({"budget": [{"per": "user", "usd_per_month": 0.001}]})
    for _ in range(3):
        await call(limits, monthly)
    await refused(limits, monthly)
    clock.at("2026-01-16T00:00:00")  # a new day is not a new month
    await refused(limits, monthly)
    clock.at("2026-01-31T23:59:59.999")
    err = await refused(limits, monthly)
    assert err.headers["retry-after"] == "1"
    clock.at("2026-02-01T00:00:00")
    await call(limits, monthly)


async def test_december_rolls_into_january(store: Store, prefix: str) -> None:
    clock = Clock("2026-12-31T12:00:00")
    limits = Limits(store, MODELS, prefix, clock)
    monthly = policy({"budget": [{"per": "user", "usd_per_month": 0.0005}]})
    await call(limits, monthly)
    await refused(limits, monthly)
    clock.at("2027-01-01T00:00:00")
    await call(limits, monthly)
    key = budget_key(
        counter_tag(prefix, "wf", "user", "alice"), "wf", "month", "202701", "user", "alice"
    )
    assert (await store.usage([key]))[key].spent == 300
