"""The Redis store, shared by every gateway instance: one Lua script per call, so one round
trip checks and updates all of a request's rules atomically.

Every key one request touches carries one hash tag (gateway/limits/keys.py: its workflow's,
or the gateway-wide one when a ``per: global`` rule is shared), so they sit in one Redis
Cluster slot and one script checks them all, while workflows spread over the slots. The
client comes from the one Redis factory (gateway/stores/redis.py), which bounds each call
and maps every failure to StoreError.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from gateway.limits.store import Ask, BudgetUsage, RateState, Settlement, Verdict
from gateway.stores import RedisClient, Script
from gateway.stores.redis import Client

__all__ = ["ADMIT_SHA", "RedisStore", "admit_payload"]

_ADMIT = Script.load("gateway.limits", "admit.lua")
ADMIT_SHA = _ADMIT.sha
_SETTLE = Script.load("gateway.limits", "settle.lua")


def admit_payload(ask: Ask) -> dict[str, Any]:
    """The admit script's one argument (lua/admit.lua names its fields)."""
    return {
        "now": ask.now_us,
        "in_cost": ask.in_cost,
        "out_price": ask.out_price,
        "max_out": ask.max_out,
        "clamp": ask.clamp,
        "min_out": ask.min_out,
        "in_tokens": ask.in_tokens,
        "rates": [[r.interval, r.period_us, r.cost, r.tokens] for r in ask.rates],
        "budgets": [[b.limit, b.ttl_s, b.resets_at * 1e6] for b in ask.budgets],
    }


class RedisStore:
    """Admit and settle cost at most the client's bound each (``limits.store_timeout_ms``);
    the admin reads (usage, scan) are bounded per read only, as they walk many keys."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    @property
    def client(self) -> Client:
        return self._redis.raw

    async def admit(self, ask: Ask) -> Verdict:
        payload = admit_payload(ask)
        keys = [r.key for r in ask.rates] + [b.key for b in ask.budgets]
        raw = orjson.loads(await self._redis.script(_ADMIT, keys, [orjson.dumps(payload)]))
        allowed, out, reserved, refused, retry = (int(v) for v in raw[:5])
        states = tuple(RateState(int(raw[i]), int(raw[i + 1])) for i in range(5, len(raw), 2))
        refused_by: int | Literal["budget"] | None = None
        if refused > 0:
            refused_by = refused - 1  # Lua counts from 1
        elif refused == 0:
            refused_by = "budget"
        return Verdict(
            bool(allowed), states, out=out, reserved=reserved, refused_by=refused_by, retry_us=retry
        )

    async def settle(self, settlement: Settlement) -> None:
        keys = [*settlement.budget_keys, *(r.key for r in settlement.token_rates)]
        if settlement.marker is not None:
            keys.append(settlement.marker)
        payload = {
            "now": settlement.now_us,
            "n_budgets": len(settlement.budget_keys),
            "reserved": settlement.reserved,
            "actual": settlement.actual,
            "refund": settlement.token_refund,
            "intervals": [r.interval for r in settlement.token_rates],
        }
        await self._redis.script(_SETTLE, keys, [orjson.dumps(payload)])

    async def usage(self, keys: list[str]) -> dict[str, BudgetUsage]:
        async def read(client: Client) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(key, "s", "r")
                rows: list[Any] = await pipe.execute()
                return rows

        rows = await self._redis.call(read, bounded=False)
        return {
            k: BudgetUsage(int(s or 0), int(r or 0))
            for k, (s, r) in zip(keys, rows, strict=True)
            if s is not None or r is not None
        }

    async def rate_tat(self, keys: list[str]) -> dict[str, float]:
        if not keys:
            return {}

        async def read(client: Client) -> list[Any]:
            values: list[Any] = await client.mget(keys)
            return values

        values = await self._redis.call(read, bounded=False)
        return {k: float(v) for k, v in zip(keys, values, strict=True) if v is not None}

    async def scan(self, pattern: str) -> list[str]:
        async def walk(client: Client) -> list[str]:
            return [k.decode() async for k in client.scan_iter(match=pattern, count=1000)]

        return await self._redis.call(walk, bounded=False)

    async def aclose(self) -> None:
        await self._redis.aclose()
