"""A canary's signals per workflow and version, over ``abort_on.window_s``: requests, errors,
refusals, fallbacks, blocks, review flags, cost (sum and sum of squares) and a latency
histogram for the p95.

The window is ten slices of ``window_s / 10`` seconds: counts go into the current slice and a
reading adds up the last ten, so the window slides by a tenth. Requests count into a local
``Tally`` (a dict update on the request path, no I/O) that the rollout service flushes every
poll: to Redis when configured (one atomic script per slice, keys hash-tagged by workflow so
one workflow's slices share a Cluster slot, expiring after the window), so every instance
judges the same totals; otherwise into process memory.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from typing import Protocol

from gateway.stores.redis import RedisClient, Script

__all__ = [
    "LATENCY_EDGES",
    "SIGNALS",
    "MemorySignals",
    "RedisSignals",
    "SignalStore",
    "Tally",
    "latency_field",
    "slice_of",
]

SLICES = 10
# Counters every sample adds to (rates are these over ``requests``).
SIGNALS = ("requests", "errors", "refusals", "fallbacks", "blocks", "reviews", "cost", "cost_sq")
# Latency buckets: 1 ms to ~650 s, each 25 % wider than the last (a p95 within 25 %).
LATENCY_EDGES = tuple(0.001 * 1.25**k for k in range(61))

_ADD = Script.load("gateway.rollout", "add.lua")
_READ = Script.load("gateway.rollout", "read.lua")

Counts = dict[str, float]


def latency_field(seconds: float) -> str:
    return f"l{bisect_left(LATENCY_EDGES, seconds)}"


def slice_of(now: float, window_s: int) -> tuple[int, int]:
    """``(slice length in seconds, index of the slice holding now)``."""
    length = max(1, math.ceil(window_s / SLICES))
    return length, int(now // length)


class Tally:
    """Samples counted since the last flush, per (workflow, version, slice)."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str, int, int], Counts] = {}

    def add(self, key: tuple[str, str, int, int], counts: Mapping[str, float]) -> None:
        into = self.pending.get(key)
        if into is None:
            into = self.pending[key] = {}
        for name, amount in counts.items():
            into[name] = into.get(name, 0.0) + amount

    def take(self) -> dict[tuple[str, str, int, int], Counts]:
        pending, self.pending = self.pending, {}
        return pending


class SignalStore(Protocol):
    async def add(
        self, workflow: str, version: str, length: int, index: int, counts: Counts
    ) -> None: ...

    async def window(self, workflow: str, version: str, length: int, index: int) -> Counts:
        """The sums over the ten slices up to and including ``index``."""
        ...


def _total(slices: list[Counts]) -> Counts:
    out: Counts = {}
    for counts in slices:
        for name, amount in counts.items():
            out[name] = out.get(name, 0.0) + amount
    return out


class MemorySignals:
    """One instance's signals (no ``stores.redis_url``)."""

    def __init__(self) -> None:
        self._slices: dict[tuple[str, str, int, int], Counts] = {}

    async def add(
        self, workflow: str, version: str, length: int, index: int, counts: Counts
    ) -> None:
        into = self._slices.setdefault((workflow, version, length, index), {})
        for name, amount in counts.items():
            into[name] = into.get(name, 0.0) + amount
        for key in [k for k in self._slices if k[3] <= index - SLICES and k[2] == length]:
            del self._slices[key]

    async def window(self, workflow: str, version: str, length: int, index: int) -> Counts:
        return _total(
            [
                counts
                for i in range(index - SLICES + 1, index + 1)
                if (counts := self._slices.get((workflow, version, length, i))) is not None
            ]
        )


class RedisSignals:
    """Shared signals: ``<prefix>:rollout:{W}:sig:<version>:<length>:<index>`` hashes."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client

    def _key(self, workflow: str, version: str, length: int, index: int) -> str:
        return self._client.key(workflow, "sig", version, str(length), str(index))

    async def add(
        self, workflow: str, version: str, length: int, index: int, counts: Counts
    ) -> None:
        args: list[str | float | int] = [length * (SLICES + 1)]
        for name, amount in counts.items():
            args += [name, repr(amount)]
        await self._client.script(_ADD, [self._key(workflow, version, length, index)], args)

    async def window(self, workflow: str, version: str, length: int, index: int) -> Counts:
        keys = [
            self._key(workflow, version, length, i) for i in range(index - SLICES + 1, index + 1)
        ]
        raw = await self._client.script(_READ, keys, [])
        out: Counts = {}
        for flat in raw:
            for name, value in zip(flat[::2], flat[1::2], strict=True):
                field = name.decode() if isinstance(name, bytes) else str(name)
                out[field] = out.get(field, 0.0) + float(value)
        return out
