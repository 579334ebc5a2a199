"""The in-process store: one gateway instance, no network. Each call runs without an
``await`` inside, so on one event loop it is as atomic as the Redis script it mirrors."""

from __future__ import annotations

import fnmatch
import math

from gateway.limits import gcra
from gateway.limits.cost import tokens_cost
from gateway.limits.store import (
    Ask,
    BudgetUsage,
    RateState,
    Settlement,
    Verdict,
)

__all__ = ["MemoryStore"]

_SWEEP_EVERY = 4096
_SETTLED_MAX = 65_536  # settlement markers kept (the Redis store keeps each a day)


class MemoryStore:
    def __init__(self) -> None:
        self._tats: dict[str, tuple[float, float]] = {}  # key -> (tat, expires), microseconds
        self._budgets: dict[str, list[float]] = {}  # key -> [spent, reserved, expires_us]
        self._calls = 0
        self._settled: dict[str, None] = {}  # settlement markers, oldest first

    async def admit(self, ask: Ask) -> Verdict:
        now = ask.now_us
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            self._sweep(now)
        out, reserved = ask.max_out, 0
        if ask.budgets:
            held = [self._budget(b.key, now) for b in ask.budgets]
            if ask.clamp:
                for b, (spent, res, _) in zip(ask.budgets, held, strict=True):
                    avail = b.limit - spent - res - ask.in_cost
                    can = math.floor(avail / ask.out_price) if ask.out_price > 0 else out
                    out = min(out, max(can, -1))
            reserved = ask.in_cost + tokens_cost(out, ask.out_price)
            broke = out < ask.min_out or any(
                spent + res + reserved > b.limit
                for b, (spent, res, _) in zip(ask.budgets, held, strict=True)
            )
            if broke:
                retry = max(0.0, *(b.resets_at * 1e6 - now for b in ask.budgets))
                return Verdict(
                    False, self._peek(ask), refused_by="budget", retry_us=math.ceil(retry)
                )
        steps = [
            gcra.step(
                self._tat(r.key, now),
                now,
                r.interval,
                r.period_us,
                r.cost + (ask.in_tokens + out if r.tokens else 0),
            )
            for r in ask.rates
        ]
        refused = [i for i, s in enumerate(steps) if not s.allowed]
        if refused:
            worst = max(refused, key=lambda i: steps[i].retry_us)
            retry = math.ceil(steps[worst].retry_us)
            return Verdict(False, _states(steps), refused_by=worst, retry_us=retry)
        for r, s in zip(ask.rates, steps, strict=True):
            self._tats[r.key] = (s.tat, s.tat + 1e6)
        for b in ask.budgets:
            entry = self._budgets.get(b.key)
            if entry is None or entry[2] <= now:
                entry = self._budgets[b.key] = [0, 0, 0]
            entry[1] += reserved
            entry[2] = now + b.ttl_s * 1e6
        return Verdict(True, _states(steps), out=out, reserved=reserved)

    async def settle(self, settlement: Settlement) -> None:
        if settlement.marker is not None:
            if settlement.marker in self._settled:
                return
            self._settled[settlement.marker] = None
            if len(self._settled) > _SETTLED_MAX:  # oldest first: a resend comes within seconds
                del self._settled[next(iter(self._settled))]
        now = settlement.now_us
        for key in settlement.budget_keys:
            entry = self._budgets.get(key)
            if entry is not None:
                entry[0] += settlement.actual
                entry[1] = max(0, entry[1] - settlement.reserved)
        if settlement.token_refund:
            for r in settlement.token_rates:
                tat = gcra.refund(self._tat(r.key, now), now, r.interval, settlement.token_refund)
                if tat is None:
                    self._tats.pop(r.key, None)
                else:
                    self._tats[r.key] = (tat, tat + 1e6)

    async def usage(self, keys: list[str]) -> dict[str, BudgetUsage]:
        return {
            k: BudgetUsage(int(e[0]), int(e[1]))
            for k in keys
            if (e := self._budgets.get(k)) is not None
        }

    async def rate_tat(self, keys: list[str]) -> dict[str, float]:
        return {k: v[0] for k in keys if (v := self._tats.get(k)) is not None}

    async def scan(self, pattern: str) -> list[str]:
        return [k for k in (*self._tats, *self._budgets) if fnmatch.fnmatchcase(k, pattern)]

    async def aclose(self) -> None:
        self._tats.clear()
        self._budgets.clear()

    def _tat(self, key: str, now: float) -> float | None:
        entry = self._tats.get(key)
        return entry[0] if entry is not None and entry[1] > now else None

    def _budget(self, key: str, now: float) -> tuple[int, int, float]:
        entry = self._budgets.get(key)
        if entry is None or entry[2] <= now:
            return 0, 0, 0.0
        return int(entry[0]), int(entry[1]), entry[2]

    def _peek(self, ask: Ask) -> tuple[RateState, ...]:
        now = ask.now_us
        return _states(
            [gcra.step(self._tat(r.key, now), now, r.interval, r.period_us, 0) for r in ask.rates]
        )

    def _sweep(self, now: float) -> None:
        for key in [k for k, v in self._tats.items() if v[1] <= now]:
            del self._tats[key]
        for key in [k for k, v in self._budgets.items() if v[2] <= now]:
            del self._budgets[key]


def _states(steps: list[gcra.Gcra]) -> tuple[RateState, ...]:
    return tuple(RateState(s.remaining, math.floor(s.reset_us)) for s in steps)
