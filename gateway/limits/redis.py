"""The Redis store, shared by every gateway instance: one Lua script per call, so one round
trip checks and updates all of a request's rules atomically.

Each counter's key carries the hash tag of its scope (gateway/limits/keys.py: gateway-wide,
workflow, or one subject of a workflow), so counters spread over Redis Cluster slots by
workflow and by subject. A request whose counters share one tag is one script, as on a single
Redis. One whose counters span tags, on a Cluster, is reserved slot by slot in tag order:
each slot's script checks and holds its share under a reservation id (a hold record kept
``HOLD_MS``); on a refusal (or a failure) the slots already held are released by that id, at
most once. Nothing is admitted that every slot did not hold, so no limit is passed; a refusal
may briefly hold another slot's share (others may be refused meanwhile). Settling is then per
slot, each with its own marker. The client comes from the one Redis factory
(gateway/stores/redis.py), which bounds each call and maps every failure to StoreError.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson

from gateway.limits.cost import tokens_cost
from gateway.limits.keys import tag_of
from gateway.limits.store import (
    Ask,
    BudgetUsage,
    Excess,
    RateState,
    Settlement,
    Verdict,
)
from gateway.stores import RedisClient, Script, StoreError
from gateway.stores.redis import Client

__all__ = ["ADMIT_SHA", "HOLD_MS", "RedisStore", "admit_payload"]

log = logging.getLogger("gateway.limits")

_ADMIT = Script.load("gateway.limits", "admit.lua")
ADMIT_SHA = _ADMIT.sha
_SETTLE = Script.load("gateway.limits", "settle.lua")
_RELEASE = Script.load("gateway.limits", "release.lua")
# How long a slot's hold record lives: a release sent later (its resends end within 8 s)
# gives back nothing, and a record left by an instance that died is gone by then.
HOLD_MS = 30_000
_RELEASE_AGAIN_S = (0.1, 0.5, 2.0, 5.0)


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
        "hold_ms": HOLD_MS,
    }


@dataclass(frozen=True, slots=True)
class _Hold:
    """One request reserved slot by slot: its ask, its reservation id, when it began."""

    ask: Ask
    id: str
    started: float  # time.monotonic()

    def now_us(self) -> float:
        """The caller's clock now, on the ask's scale: the ask's time plus what has passed
        since (release.lua gives a rate back less the time its hold stood)."""
        return self.ask.now_us + (time.monotonic() - self.started) * 1e6


# One slot's share of an ask: its tag, and the indexes of its rates and budgets in the ask.
_Slot = tuple[str, tuple[int, ...], tuple[int, ...]]


def _slots(ask: Ask) -> list[_Slot]:
    """The ask's counters by hash tag, in tag order (every instance takes slots in the same
    order). One entry: one script holds them all."""
    rates: dict[str, list[int]] = {}
    budgets: dict[str, list[int]] = {}
    for i, r in enumerate(ask.rates):
        rates.setdefault(tag_of(r.key), []).append(i)
    for j, b in enumerate(ask.budgets):
        budgets.setdefault(tag_of(b.key), []).append(j)
    return [
        (tag, tuple(rates.get(tag, ())), tuple(budgets.get(tag, ())))
        for tag in sorted(rates.keys() | budgets.keys())
    ]


class RedisStore:
    """Admit and settle cost at most the client's bound per script (``limits.store_timeout_ms``;
    a request reserved slot by slot makes one call per slot); the admin reads (usage, scan)
    are bounded per read only, as they walk many keys.

    ``split``: reserve slot by slot when a request's counters span hash tags; by default on
    a Cluster only (a single Redis runs any keys in one script)."""

    def __init__(self, redis: RedisClient, split: bool | None = None) -> None:
        self._redis = redis
        self._split = redis.cluster if split is None else split
        self._releasing: set[asyncio.Task[None]] = set()

    @property
    def client(self) -> Client:
        return self._redis.raw

    async def admit(self, ask: Ask) -> Verdict:
        keys = [r.key for r in ask.rates] + [b.key for b in ask.budgets]
        if self._split and keys:
            tag = tag_of(keys[0])
            if not all(k.startswith(tag) for k in keys):  # a key's tag ends at its first "}"
                return await self._admit_by_slot(ask, _slots(ask))
        return await self._admit(ask, keys)

    async def _admit(self, ask: Ask, keys: list[str]) -> Verdict:
        payload = orjson.dumps(admit_payload(ask))
        raw = orjson.loads(await self._redis.script(_ADMIT, keys, [payload]))
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

    async def _admit_by_slot(self, ask: Ask, slots: list[_Slot]) -> Verdict:
        """Hold each slot's share in turn; the first refusal releases what was held."""
        hold = _Hold(ask, uuid.uuid4().hex, time.monotonic())
        states: list[RateState | None] = [None] * len(ask.rates)
        held: list[tuple[_Slot, Verdict]] = []
        out = ask.max_out
        for slot in slots:
            tag, rate_ix, budget_ix = slot
            share = replace(
                ask,
                rates=tuple(ask.rates[i] for i in rate_ix),
                budgets=tuple(ask.budgets[j] for j in budget_ix),
                max_out=out,  # what the slots before left (a budget clamps it)
            )
            keys = [r.key for r in share.rates] + [b.key for b in share.budgets]
            try:
                verdict = await self._admit(share, [*keys, f"{tag}:hold:{hold.id}"])
            except StoreError:
                # This slot may have held without answering: release it too (by id, once).
                self._release_later(hold, [*(s for s, _ in held), slot])
                raise
            for k, i in enumerate(rate_ix):
                states[i] = verdict.rates[k]
            if not verdict.allowed:
                await self._release(hold, [s for s, _ in reversed(held)])
                refused = verdict.refused_by
                return Verdict(
                    False,
                    _known(ask, states),
                    refused_by=rate_ix[refused] if isinstance(refused, int) else refused,
                    retry_us=verdict.retry_us,
                )
            out = verdict.out
            held.append((slot, verdict))
        reserved = ask.in_cost + tokens_cost(out, ask.out_price) if ask.budgets else 0
        excess = tuple(
            Excess(
                tag,
                verdict.reserved - reserved if budget_ix else 0,
                verdict.out - out if any(ask.rates[i].tokens for i in rate_ix) else 0,
            )
            for (tag, rate_ix, budget_ix), verdict in held
            if verdict.out != out
        )
        return Verdict(True, _known(ask, states), out=out, reserved=reserved, excess=excess)

    async def _release(self, hold: _Hold, slots: list[_Slot]) -> None:
        """Give back these slots' holds; one that fails is sent again in the background."""
        for slot in slots:
            try:
                await self._release_one(hold, slot)
            except StoreError:
                self._release_later(hold, [slot])

    async def _release_one(self, hold: _Hold, slot: _Slot) -> None:
        tag, rate_ix, budget_ix = slot
        keys = [
            f"{tag}:hold:{hold.id}",
            *(hold.ask.rates[i].key for i in rate_ix),
            *(hold.ask.budgets[j].key for j in budget_ix),
        ]
        await self._redis.script(_RELEASE, keys, [repr(hold.now_us())])

    def _release_later(self, hold: _Hold, slots: list[_Slot]) -> None:
        async def again() -> None:
            for slot in slots:
                error: StoreError | None = None
                for delay in _RELEASE_AGAIN_S:
                    await asyncio.sleep(delay)
                    try:
                        await self._release_one(hold, slot)
                        break
                    except StoreError as exc:
                        error = exc
                else:
                    log.warning("limits hold %s not released: %s", hold.id, error)

        task = asyncio.get_running_loop().create_task(again())
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def settle(self, settlement: Settlement) -> None:
        if not self._split:
            await self._settle(settlement, settlement.marker)
            return
        by_tag: dict[str, tuple[list[str], list[int]]] = {}
        for key in settlement.budget_keys:
            by_tag.setdefault(tag_of(key), ([], []))[0].append(key)
        for i, r in enumerate(settlement.token_rates):
            by_tag.setdefault(tag_of(r.key), ([], []))[1].append(i)
        excess = {e.tag: e for e in settlement.excess}
        shares = []
        for tag, (budget_keys, rate_ix) in sorted(by_tag.items()):
            more = excess.get(tag, Excess(tag, 0, 0))
            share = replace(
                settlement,
                budget_keys=tuple(budget_keys),
                reserved=settlement.reserved + more.reserved,
                token_rates=tuple(settlement.token_rates[i] for i in rate_ix),
                token_refund=settlement.token_refund + more.tokens,
                excess=(),
            )
            marker = settlement.marker
            if marker is not None:  # the same marker, in this slot
                marker = tag + marker[len(tag_of(marker)) :]
            shares.append(self._settle(share, marker))
        await asyncio.gather(*shares)

    async def _settle(self, settlement: Settlement, marker: str | None) -> None:
        keys = [*settlement.budget_keys, *(r.key for r in settlement.token_rates)]
        if marker is not None:
            keys.append(marker)
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
            from redis.asyncio.cluster import RedisCluster  # loaded with the client

            if isinstance(client, RedisCluster):  # the keys span slots: one MGET per slot
                spread: list[Any] = await client.mget_nonatomic(keys)
                return spread
            values: list[Any] = await client.mget(keys)
            return values

        values = await self._redis.call(read, bounded=False)
        return {k: float(v) for k, v in zip(keys, values, strict=True) if v is not None}

    async def scan(self, pattern: str) -> list[str]:
        async def walk(client: Client) -> list[str]:
            return [k.decode() async for k in client.scan_iter(match=pattern, count=1000)]

        return await self._redis.call(walk, bounded=False)

    async def aclose(self) -> None:
        if self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)
        await self._redis.aclose()


def _known(ask: Ask, states: list[RateState | None]) -> tuple[RateState, ...]:
    """Each rate's state as its slot answered; a slot not reached counts as untouched."""
    return tuple(
        s if s is not None else RateState(r.limit, 0)
        for r, s in zip(ask.rates, states, strict=True)
    )
