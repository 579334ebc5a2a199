"""A request whose counters span hash tags, reserved slot by slot (gateway/limits/redis.py):
on a single Redis told to split as a Cluster must, and on a real Redis Cluster. A refusal in
a later slot gives back what the earlier slots held; a refusal in the first never touches the
rest; a clamp in a later slot is given back to the earlier ones when the request settles."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import orjson
import pytest

from gateway.auth.principal import Principal
from gateway.context import RequestContext
from gateway.limits.keys import counter_tag
from gateway.limits.redis import RedisStore
from gateway.limits.report import usage_rows
from gateway.limits.step import Limits
from gateway.limits.store import Ask, BudgetCheck, BudgetUsage, Excess, RateCheck, Settlement
from gateway.stores import open_redis
from gateway.surfaces import openai_chat
from tests.limits.conftest import REDIS_URL, cluster_url, drop_keys
from tests.limits.test_periods import MODELS, Clock, policy

S = 1e6
T0 = 1_780_000_000.0


@pytest.fixture(params=["redis-split", "cluster"])
async def split(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[RedisStore]:
    url = cluster_url() if request.param == "cluster" else REDIS_URL
    store = RedisStore(open_redis(url, user="lim", timeout_s=2.0), split=True)
    try:
        yield store
    finally:
        await store.aclose()
        await drop_keys(prefix, url)


def tags(prefix: str) -> tuple[str, str]:
    """Alice's slot and the workflow's, in the order they are reserved (``:`` < ``}``)."""
    user, workflow = (
        counter_tag(prefix, "wf", "user", "alice"),
        counter_tag(prefix, "wf", "workflow", "*"),
    )
    assert user < workflow
    return user, workflow


def rpm(tag: str, name: str, limit: int) -> RateCheck:
    return RateCheck(f"{tag}:wf:rpm:{name}", "requests", limit, 60 * S, 1)


def tpm(tag: str, limit: int) -> RateCheck:
    return RateCheck(f"{tag}:wf:tpm:x", "tokens", limit, 60 * S)


def budget(tag: str, limit: int) -> BudgetCheck:
    return BudgetCheck(f"{tag}:wf:usd:day:x", limit, 3600, T0 + 3600)


async def holds(store: RedisStore, prefix: str) -> list[str]:
    return await store.scan(f"{{{prefix}:lim*:hold:*")


async def test_a_refusal_in_the_second_slot_leaves_nothing_held_in_the_first(
    split: RedisStore, prefix: str
) -> None:
    """The clock runs (time.time()): a released rate hold gives back what it was charged less
    the time it stood, which the running clock has already given back."""
    user, workflow = tags(prefix)
    tight, roomy, cap = rpm(workflow, "w", 1), rpm(user, "u", 3), budget(user, 10_000)
    cost = {"in_cost": 100, "out_price": 2.0, "max_out": 250}
    first = await split.admit(Ask(time.time() * S, (tight, roomy), (cap,), **cost))  # type: ignore[arg-type]
    assert (first.allowed, first.reserved, first.excess) == (True, 600, ())
    refused = await split.admit(Ask(time.time() * S, (tight, roomy), (cap,), **cost))  # type: ignore[arg-type]
    assert (refused.allowed, refused.refused_by) == (False, 0)  # the ask's own index
    assert refused.retry_us == pytest.approx(60 * S, rel=0.01)
    assert (await split.usage([cap.key]))[cap.key] == BudgetUsage(0, 600)  # one hold, not two
    assert await holds(split, prefix) != []  # the admitted request's holds stay (until TTL)
    alone = [(await split.admit(Ask(time.time() * S, (roomy,), ()))).allowed for _ in range(3)]
    assert alone == [True, True, False]  # 3 a minute: the refused request took none


async def test_a_refusal_in_the_first_slot_never_reaches_the_second(
    split: RedisStore, prefix: str
) -> None:
    user, workflow = tags(prefix)
    tight, roomy = rpm(user, "u", 1), rpm(workflow, "w", 5)
    assert (await split.admit(Ask(T0 * S, (roomy, tight), ()))).allowed
    refused = await split.admit(Ask(T0 * S, (roomy, tight), ()))
    assert (refused.allowed, refused.refused_by) == (False, 1)
    assert refused.rates[0].remaining == 5  # a slot not reached is reported untouched
    alone = [(await split.admit(Ask(T0 * S, (roomy,), ()))).allowed for _ in range(5)]
    assert alone == [True] * 4 + [False]


async def test_a_budget_refusal_in_the_second_slot_releases_the_first_budget(
    split: RedisStore, prefix: str
) -> None:
    user, workflow = tags(prefix)
    mine, theirs = budget(user, 10_000), budget(workflow, 1_000)
    cost = {"in_cost": 100, "out_price": 2.0, "max_out": 250}  # 600 each
    assert (await split.admit(Ask(T0 * S, (), (mine, theirs), **cost))).allowed  # type: ignore[arg-type]
    refused = await split.admit(Ask(T0 * S, (), (mine, theirs), **cost))  # type: ignore[arg-type]
    assert (refused.allowed, refused.refused_by) == (False, "budget")
    usage = await split.usage([mine.key, theirs.key])
    assert usage == {mine.key: BudgetUsage(0, 600), theirs.key: BudgetUsage(0, 600)}


async def test_a_clamp_in_a_later_slot_is_given_back_when_settling(
    split: RedisStore, prefix: str
) -> None:
    """Alice's budget pays 450 output tokens, the workflow's 300: 300 are granted, and what
    Alice's slot held for the other 150 (300 micro-USD, 150 tokens) comes back at settling,
    once, however often the settlement is sent."""
    user, workflow = tags(prefix)
    mine, theirs, tokens = budget(user, 1_000), budget(workflow, 700), tpm(user, 10_000)
    clamp = {"in_cost": 100, "out_price": 2.0, "max_out": 500, "clamp": True}
    verdict = await split.admit(Ask(T0 * S, (tokens,), (mine, theirs), **clamp))  # type: ignore[arg-type]
    assert (verdict.allowed, verdict.out, verdict.reserved) == (True, 300, 700)
    assert verdict.excess == (Excess(user, 300, 150),)
    usage = await split.usage([mine.key, theirs.key])
    assert usage == {mine.key: BudgetUsage(0, 1000), theirs.key: BudgetUsage(0, 700)}
    marker = f"{workflow}:settled:req-1"
    used = 100  # output tokens
    done = Settlement(
        T0 * S, (mine.key, theirs.key), 700, 300, (tokens,), 300 - used, marker, verdict.excess
    )
    await split.settle(done)
    await split.settle(done)  # a resend: each slot's marker makes it a no-op
    usage = await split.usage([mine.key, theirs.key])
    assert usage == {mine.key: BudgetUsage(300, 0), theirs.key: BudgetUsage(300, 0)}
    probe = await split.admit(Ask(T0 * S, (tokens,), ()))
    assert probe.rates[0].remaining == 10_000 - used
    assert sorted(await split.scan(f"{{{prefix}:lim*:settled:req-1")) == [
        f"{user}:settled:req-1",
        marker,
    ]


async def test_usage_rows_read_counters_spread_over_slots(split: RedisStore, prefix: str) -> None:
    """``gateway limits show`` and ``GET /admin/limits`` find each subject's counters in its
    own slot (a scan over every node, one MGET per slot on a Cluster)."""
    clock = Clock("2026-03-10T12:00:00")
    limits = Limits(split, MODELS, prefix, clock)
    compiled = policy(
        {
            "rate": [
                {"per": "user", "requests_per_minute": 5},
                {"per": "workflow", "requests_per_hour": 50},
            ],
            "budget": [{"per": "user", "usd_per_day": 1}],
        }
    )
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}
    for who in ("alice", "alice", "bob"):
        ctx = RequestContext("chat", "wf", principal=Principal(who, frozenset({"analyst"})))
        await limits.admit(ctx, openai_chat.parse(orjson.dumps(body)), compiled)
        ctx.model_used, ctx.tokens_in, ctx.tokens_out = "gpt-test", 10, 20
        await limits.settle(ctx)
    rows = await usage_rows(split, prefix, {"wf": compiled}, clock())
    used = {(r["rule"], r["subject"]): r["used"] for r in rows}
    assert used == {
        ("requests_per_minute", "alice"): 2,
        ("requests_per_minute", "bob"): 1,
        ("requests_per_hour", "*"): 3,
        ("usd_per_day", "alice"): 100e-6,  # 10 in + 2 x 20 out, twice
        ("usd_per_day", "bob"): 50e-6,
    }
    alice = await usage_rows(split, prefix, {"wf": compiled}, clock(), subject="alice")
    assert {r["subject"] for r in alice} == {"alice"}
