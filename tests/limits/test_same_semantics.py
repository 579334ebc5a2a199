"""Memory and Redis give the same verdicts, to the microsecond, for the same long random
sequence of asks and settlements: the Lua script and the Python reference do the same sums."""

from __future__ import annotations

import random

import pytest

from gateway.limits.memory import MemoryStore
from gateway.limits.store import Ask, BudgetCheck, RateCheck, Settlement, Store, Verdict
from tests.limits.conftest import drop_keys, new_prefix, redis_store

S = 1e6
T0 = 1_780_000_000.0


def counters(prefix: str) -> tuple[list[RateCheck], list[BudgetCheck]]:
    tag = f"{{{prefix}:lim}}"
    rates = [
        RateCheck(f"{tag}:rpm:a", "requests", 7, 60 * S, 1),
        RateCheck(f"{tag}:rph:a", "requests", 50, 3600 * S, 1),
        RateCheck(f"{tag}:tpm:a", "tokens", 5000, 60 * S),
        RateCheck(f"{tag}:rpm:b", "requests", 3, 60 * S, 1),
    ]
    budgets = [
        BudgetCheck(f"{tag}:usd:a", 40_000, 86_400, T0 + 86_400),
        BudgetCheck(f"{tag}:usd:b", 15_000, 86_400, T0 + 86_400),
    ]
    return rates, budgets


async def run(store: Store, prefix: str, seed: int) -> list[Verdict]:
    rng = random.Random(seed)
    rates, budgets = counters(prefix)
    now = T0
    verdicts: list[Verdict] = []
    for _ in range(400):
        now += rng.choice((0.0, 0.0, 0.001, 0.5, 3.0, 9.0))
        rate_pick = tuple(r for r in rates if rng.random() < 0.6)
        budget_pick = tuple(b for b in budgets if rng.random() < 0.5)
        ask = Ask(
            now * S,
            rate_pick,
            budget_pick,
            in_tokens=rng.randint(0, 900),
            in_cost=rng.randint(0, 900),
            out_price=rng.choice((0.0, 0.15, 0.6, 2.0, 15.0)),
            max_out=rng.randint(1, 2000),
            clamp=rng.random() < 0.3,
        )
        verdict = await store.admit(ask)
        verdicts.append(verdict)
        if verdict.allowed and rng.random() < 0.7:
            used = rng.randint(0, verdict.out)
            await store.settle(
                Settlement(
                    now * S,
                    tuple(b.key for b in budget_pick),
                    verdict.reserved,
                    rng.randint(0, verdict.reserved),
                    tuple(r for r in rate_pick if r.tokens),
                    ask.in_tokens + verdict.out - used,
                )
            )
    return verdicts


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_memory_and_redis_agree(seed: int) -> None:
    prefix = new_prefix()
    shared = redis_store()
    try:
        in_redis = await run(shared, prefix, seed)
    finally:
        await shared.aclose()
        await drop_keys(prefix)
    in_memory = await run(MemoryStore(), prefix, seed)
    assert in_memory == in_redis
    outcomes = {(v.allowed, v.refused_by if not v.allowed else None) for v in in_memory}
    assert (True, None) in outcomes and (False, "budget") in outcomes  # both paths exercised
    assert any(not v.allowed and isinstance(v.refused_by, int) for v in in_memory)
