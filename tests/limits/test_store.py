"""The store contract, one body run against memory and the real Redis: exact bursts, smooth
refill (no double burst at a window edge), all-or-nothing across rules, reserve and settle,
clamping, token refunds."""

from __future__ import annotations

import pytest

from gateway.limits.store import Ask, BudgetCheck, BudgetUsage, RateCheck, Settlement, Store

S = 1e6  # microseconds per second
T0 = 1_780_000_000.0  # a fixed epoch second, so runs are reproducible


def rpm(prefix: str, name: str, limit: int, cost: int = 1) -> RateCheck:
    return RateCheck(f"{{{prefix}:lim}}:wf:rpm:user:{name}", "requests", limit, 60 * S, cost)


def tpm(prefix: str, name: str, limit: int, cost: int = 0) -> RateCheck:
    return RateCheck(f"{{{prefix}:lim}}:wf:tpm:user:{name}", "tokens", limit, 60 * S, cost)


def budget(prefix: str, name: str, limit: int) -> BudgetCheck:
    return BudgetCheck(f"{{{prefix}:lim}}:wf:usd:day:x:user:{name}", limit, 3600, T0 + 3600)


def ask(now: float, *checks: RateCheck | BudgetCheck, **cost: int | float | bool) -> Ask:
    rates = tuple(c for c in checks if isinstance(c, RateCheck))
    budgets = tuple(c for c in checks if isinstance(c, BudgetCheck))
    return Ask(now * S, rates, budgets, **cost)  # type: ignore[arg-type]


async def admitted(store: Store, now: float, n: int, *checks: RateCheck | BudgetCheck) -> int:
    count = 0
    for _ in range(n):
        count += (await store.admit(ask(now, *checks))).allowed
    return count


async def test_a_burst_admits_exactly_the_limit(store: Store, prefix: str) -> None:
    rule = rpm(prefix, "alice", 10)
    assert await admitted(store, T0, 15, rule) == 10
    refused = await store.admit(ask(T0, rule))
    assert (refused.allowed, refused.refused_by) == (False, 0)
    assert refused.retry_us == pytest.approx(6 * S, abs=2)  # one slot back every 6 s
    assert refused.rates[0].remaining == 0


async def test_capacity_comes_back_evenly_not_all_at_once(store: Store, prefix: str) -> None:
    rule = rpm(prefix, "bob", 10)
    assert await admitted(store, T0, 10, rule) == 10
    assert await admitted(store, T0 + 5.9, 2, rule) == 0
    assert await admitted(store, T0 + 6.0, 2, rule) == 1
    assert await admitted(store, T0 + 30.0, 10, rule) == 4  # 24 s after: four more slots


async def test_no_double_burst_across_a_minute_edge(store: Store, prefix: str) -> None:
    """A fixed window would reset at :00 and admit a second full burst 0.2 s later."""
    rule = rpm(prefix, "carol", 10)
    edge = 1_780_000_020.0  # a whole minute (divisible by 60)
    assert edge % 60 == 0
    assert await admitted(store, edge - 0.1, 10, rule) == 10
    assert await admitted(store, edge + 0.1, 10, rule) == 0
    assert await admitted(store, edge + 59.9, 20, rule) == 10  # a full minute later: whole


async def test_headers_state_counts_down(store: Store, prefix: str) -> None:
    rule = rpm(prefix, "dave", 3)
    states = [(await store.admit(ask(T0, rule))).rates[0] for _ in range(3)]
    assert [s.remaining for s in states] == [2, 1, 0]
    assert [round(s.reset_us / S) for s in states] == [20, 40, 60]


async def test_one_rule_refusing_leaves_every_rule_untouched(store: Store, prefix: str) -> None:
    roomy, tight = rpm(prefix, "erin", 100), rpm(prefix, "erin-team", 1)
    assert (await store.admit(ask(T0, roomy, tight))).allowed
    refused = await store.admit(ask(T0, roomy, tight))
    assert (refused.allowed, refused.refused_by) == (False, 1)
    # roomy was charged once, not twice: 99 of its 100 remain after one more ask alone.
    assert (await store.admit(ask(T0, roomy))).rates[0].remaining == 98


async def test_an_ask_larger_than_the_limit_never_fits(store: Store, prefix: str) -> None:
    refused = await store.admit(ask(T0, tpm(prefix, "frank", 100, cost=101)))
    assert not refused.allowed
    assert refused.retry_us == pytest.approx(60 * S, abs=2)


async def test_tokens_count_input_plus_granted_output(store: Store, prefix: str) -> None:
    rule = tpm(prefix, "gina", 1000)
    first = await store.admit(ask(T0, rule, in_tokens=300, max_out=200))
    assert (first.allowed, first.rates[0].remaining) == (True, 500)
    assert not (await store.admit(ask(T0, rule, in_tokens=300, max_out=201))).allowed
    assert (await store.admit(ask(T0, rule, in_tokens=300, max_out=200))).rates[0].remaining == 0


async def test_token_refund_gives_back_what_was_not_used(store: Store, prefix: str) -> None:
    rule = tpm(prefix, "hank", 100, cost=80)
    assert (await store.admit(ask(T0, rule))).allowed
    assert not (await store.admit(ask(T0, tpm(prefix, "hank", 100, cost=70)))).allowed
    await store.settle(Settlement(T0 * S, (), 0, 0, (rule,), token_refund=60))
    assert (await store.admit(ask(T0, tpm(prefix, "hank", 100, cost=70)))).allowed


async def test_budget_reserves_worst_case_then_settles_actual(store: Store, prefix: str) -> None:
    cap = budget(prefix, "ivy", 1000)  # micro-USD
    first = await store.admit(ask(T0, cap, in_cost=100, out_price=2.0, max_out=250))
    assert (first.allowed, first.reserved, first.out) == (True, 600, 250)
    refused = await store.admit(ask(T0, cap, in_cost=100, out_price=2.0, max_out=250))
    assert (refused.allowed, refused.refused_by) == (False, "budget")
    assert refused.retry_us == pytest.approx(3600 * S, abs=2)  # when the period ends
    await store.settle(Settlement(T0 * S, (cap.key,), 600, 150, (), 0))
    assert (await store.usage([cap.key]))[cap.key] == BudgetUsage(150, 0)
    again = await store.admit(ask(T0, cap, in_cost=100, out_price=2.0, max_out=250))
    assert again.allowed
    assert (await store.usage([cap.key]))[cap.key] == BudgetUsage(150, 600)


async def test_a_settlement_sent_twice_counts_once(store: Store, prefix: str) -> None:
    """A settlement whose first try timed out is sent again: its marker makes it a no-op when
    the first did reach the store, and the token refund is not given twice either."""
    cap, tokens = budget(prefix, "kim", 10_000), tpm(prefix, "kim", 1000, cost=300)
    assert (
        await store.admit(ask(T0, tokens, cap, in_cost=100, out_price=2.0, max_out=250))
    ).allowed
    marker = f"{{{prefix}:lim}}:settled:req-kim"
    once = Settlement(T0 * S, (cap.key,), 600, 150, (tokens,), 200, marker)
    await store.settle(once)
    after_one = await store.rate_tat([tokens.key])
    await store.settle(once)
    assert (await store.usage([cap.key]))[cap.key] == BudgetUsage(150, 0)
    assert await store.rate_tat([tokens.key]) == after_one  # refunded once
    other = Settlement(T0 * S, (cap.key,), 0, 50, (tokens,), 100, f"{{{prefix}:lim}}:settled:x")
    await store.settle(other)  # another request's settlement still counts
    assert (await store.usage([cap.key]))[cap.key] == BudgetUsage(200, 0)
    assert await store.rate_tat([tokens.key]) != after_one


async def test_budget_refusal_leaves_rates_untouched(store: Store, prefix: str) -> None:
    cap, rule = budget(prefix, "jack", 10), rpm(prefix, "jack", 5)
    refused = await store.admit(ask(T0, rule, cap, in_cost=11))
    assert (refused.allowed, refused.refused_by, refused.rates[0].remaining) == (
        False,
        "budget",
        5,
    )
    assert (await store.admit(ask(T0, rule))).rates[0].remaining == 4


async def test_clamp_grants_what_the_budget_pays_for(store: Store, prefix: str) -> None:
    cap = budget(prefix, "kim", 1000)
    clamp = {"in_cost": 100, "out_price": 0.6, "max_out": 4000, "clamp": True}
    first = await store.admit(ask(T0, cap, **clamp))
    assert (first.allowed, first.out) == (True, 1500)  # (1000 - 100) / 0.6
    assert first.reserved == 1000
    assert not (await store.admit(ask(T0, cap, **clamp))).allowed  # nothing left
    await store.settle(Settlement(T0 * S, (cap.key,), 1000, 400, (), 0))
    second = await store.admit(ask(T0, cap, **clamp))
    assert (second.out, second.reserved) == (833, 600)  # (1000 - 400 - 100) / 0.6, rounded down


async def test_every_budget_must_pay(store: Store, prefix: str) -> None:
    daily, monthly = budget(prefix, "lee-d", 1000), budget(prefix, "lee-m", 300)
    clamp = {"in_cost": 0, "out_price": 1.0, "max_out": 500, "clamp": True}
    assert (await store.admit(ask(T0, daily, monthly, **clamp))).out == 300
    usage = await store.usage([daily.key, monthly.key])
    assert usage[daily.key].reserved == usage[monthly.key].reserved == 300
