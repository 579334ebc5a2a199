"""The Redis store, shared by every gateway instance: one Lua script per call, so one round
trip checks and updates all of a request's rules atomically.

Every key carries the hash tag ``{PREFIX:lim}``, so all of them sit in one Redis Cluster
slot: a request's per-user, per-workflow and gateway-wide counters can be checked by one
script. Scripts are loaded once (SCRIPT LOAD) and called by hash (EVALSHA), falling back to
EVAL when the server forgot them (a restart, SCRIPT FLUSH, a failover).
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from gateway.limits.store import (
    Ask,
    BudgetUsage,
    RateState,
    Settlement,
    StoreError,
    Verdict,
)

__all__ = ["ADMIT_SHA", "RedisStore", "admit_payload"]


def _script(name: str) -> tuple[str, str]:
    source = resources.files("gateway.limits").joinpath("lua", name).read_text()
    return source, hashlib.sha1(source.encode()).hexdigest()


_ADMIT = _script("admit.lua")
ADMIT_SHA = _ADMIT[1]
_SETTLE = _script("settle.lua")


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
    """``timeout_s`` bounds every call, so an unreachable Redis fails a request fast."""

    def __init__(self, url: str, timeout_s: float = 0.5) -> None:
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            decode_responses=False,
        )

    @property
    def client(self) -> aioredis.Redis:
        return self._redis

    async def admit(self, ask: Ask) -> Verdict:
        payload = admit_payload(ask)
        keys = [r.key for r in ask.rates] + [b.key for b in ask.budgets]
        raw = orjson.loads(await self._call(_ADMIT, keys, payload))
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
        payload = {
            "now": settlement.now_us,
            "n_budgets": len(settlement.budget_keys),
            "reserved": settlement.reserved,
            "actual": settlement.actual,
            "refund": settlement.token_refund,
            "intervals": [r.interval for r in settlement.token_rates],
        }
        await self._call(_SETTLE, keys, payload)

    async def usage(self, keys: list[str]) -> dict[str, BudgetUsage]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(key, "s", "r")
                rows = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis: {type(exc).__name__}") from exc
        return {
            k: BudgetUsage(int(s or 0), int(r or 0))
            for k, (s, r) in zip(keys, rows, strict=True)
            if s is not None or r is not None
        }

    async def rate_tat(self, keys: list[str]) -> dict[str, float]:
        if not keys:
            return {}
        try:
            values = await self._redis.mget(keys)
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis: {type(exc).__name__}") from exc
        return {k: float(v) for k, v in zip(keys, values, strict=True) if v is not None}

    async def scan(self, pattern: str) -> list[str]:
        try:
            return [k.decode() async for k in self._redis.scan_iter(match=pattern, count=1000)]
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def _call(self, script: tuple[str, str], keys: list[str], payload: object) -> Any:
        source, sha = script
        arg = orjson.dumps(payload)
        try:
            try:
                return await self._redis.evalsha(sha, len(keys), *keys, arg)
            except NoScriptError:
                return await self._redis.eval(source, len(keys), *keys, arg)
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis: {type(exc).__name__}: {exc}") from exc
