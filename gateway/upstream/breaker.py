"""A circuit breaker per provider and model: after ``failures`` consecutive failed attempts,
or an ``error_rate`` over ``window_s`` (with at least ``min_calls`` attempts), the circuit
opens and attempts fail fast (``upstream.circuit_open``, straight to the fallback) for
``open_s``; then one attempt goes through as a probe: success closes the circuit, failure
opens it again.

State is per process (``MemoryBreaker``) or shared by every instance through one atomic Lua
script (``RedisBreaker``, with ``stores.redis_url``). A Redis that cannot be reached fails
open: the breaker protects the provider, it must not take the gateway down with it. It costs
one ``store_timeout_ms`` (default 50 ms) per ``store_backoff_ms``, not per request: meanwhile
each circuit keeps the state the store last reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.config import BreakerConfig
from gateway.stores import RedisClient, Script, StoreError

__all__ = ["Breaker", "MemoryBreaker", "RedisBreaker", "build_breaker"]

log = logging.getLogger("gateway.upstream")


class Breaker(Protocol):
    async def allow(self, key: str) -> bool:
        """False while the circuit is open (or its one probe is out): fail fast."""
        ...

    async def record(self, key: str, ok: bool) -> None:
        """The outcome of an attempt that ``allow`` let through."""
        ...

    def open_circuits(self) -> list[str]:
        """The keys (``provider/model``) of the circuits open now, as this process knows."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _Circuit:
    consecutive: int = 0
    window_start: float = 0.0
    calls: int = 0
    fails: int = 0
    open_until: float = 0.0  # 0: closed
    probe_at: float = 0.0  # 0: no probe out


class MemoryBreaker:
    """The state machine of lua/breaker.lua, in this process."""

    def __init__(self, config: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}

    async def allow(self, key: str) -> bool:
        c = self._circuits.get(key)
        if c is None or not c.open_until:
            return True
        now = self._clock()
        if now < c.open_until or (c.probe_at and now - c.probe_at < self._config.open_s):
            return False
        c.probe_at = now
        return True

    async def record(self, key: str, ok: bool) -> None:
        cfg, now = self._config, self._clock()
        c = self._circuits.get(key)
        if c is None:
            c = self._circuits[key] = _Circuit(window_start=now)
        if c.open_until:
            if not c.probe_at:
                return  # an answer from before the circuit opened
            if ok:
                del self._circuits[key]
            else:
                c.open_until, c.probe_at = now + cfg.open_s, 0.0
            return
        if now - c.window_start >= cfg.window_s:
            c.window_start, c.calls, c.fails = now, 0, 0
        c.calls += 1
        c.consecutive = 0 if ok else c.consecutive + 1
        c.fails += not ok
        if c.consecutive >= cfg.failures or (
            c.calls >= cfg.min_calls and c.fails / c.calls >= cfg.error_rate
        ):
            self._circuits[key] = _Circuit(window_start=now, open_until=now + cfg.open_s)
            log.warning("circuit %s opened for %.0f s", key, cfg.open_s)

    def open_circuits(self) -> list[str]:
        """The keys of the circuits open now (its probe out counts as open): for metrics."""
        now = self._clock()
        return [
            k
            for k, c in self._circuits.items()
            if c.open_until and (now < c.open_until or c.probe_at)
        ]

    async def aclose(self) -> None:
        self._circuits.clear()


_SCRIPT = Script.load("gateway.upstream", "breaker.lua")


class RedisBreaker:
    """Circuits as hashes ``<prefix>:breaker:{provider/model}`` (the hash tag puts each in one
    Redis Cluster slot), changed only by lua/breaker.lua.

    While the store cannot be reached, a circuit the store last reported open stays open
    until ``open_s`` after that report, every other circuit lets attempts through (fail
    open); ``unreachable`` counts the calls decided so. After a failed call the store is
    left alone for ``store_backoff_ms``. The outage is logged once, and its end once.
    """

    def __init__(
        self, config: BreakerConfig, redis: RedisClient, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._redis = redis
        self._clock = clock
        self._open_until: dict[str, float] = {}  # the store's last word, in our clock
        self._skip_until = 0.0
        self._down = False
        self.unreachable = 0

    @property
    def namespace(self) -> str:
        return self._redis.namespace

    async def _run(self, key: str, op: str, ok: bool = True) -> int | None:
        if self._clock() < self._skip_until:
            self.unreachable += 1
            return None
        cfg = self._config
        args: list[str | int | float] = [
            op,
            cfg.open_s,
            int(ok),
            cfg.failures,
            cfg.error_rate,
            cfg.window_s,
            cfg.min_calls,
        ]
        try:
            result = int(await self._redis.script(_SCRIPT, [self._redis.key(key)], args))
        except StoreError as exc:
            self.unreachable += 1
            self._skip_until = self._clock() + cfg.store_backoff_ms / 1000
            if not self._down:
                self._down = True
                log.warning(
                    "circuit breaker store unavailable (%s): failing open on each circuit's "
                    "last known state, trying again every %.0f ms",
                    exc,
                    cfg.store_backoff_ms,
                )
            return None
        if self._down:
            self._down = False
            log.warning("circuit breaker store reachable again")
        return result

    def _note(self, key: str, is_open: bool) -> None:
        if not is_open:
            self._open_until.pop(key, None)
        elif self._open_until.get(key, 0.0) <= (now := self._clock()):
            self._open_until[key] = now + self._config.open_s

    async def allow(self, key: str) -> bool:
        state = await self._run(key, "allow")
        if state is None:
            return self._clock() >= self._open_until.get(key, 0.0)
        self._note(key, state == 0)
        return state != 0

    async def record(self, key: str, ok: bool) -> None:
        state = await self._run(key, "record", ok)
        if state is None:
            return
        self._note(key, state == 0)
        if state == 0 and not ok:
            log.warning("circuit %s is open", key)

    def open_circuits(self) -> list[str]:
        """The circuits the store last reported open, while that holds: for metrics."""
        now = self._clock()
        return [k for k, until in self._open_until.items() if now < until]

    async def aclose(self) -> None:
        await self._redis.aclose()


def build_breaker(config: BreakerConfig, redis: RedisClient | None) -> Breaker | None:
    """None when the breaker is disabled; shared through ``redis`` (the breaker's client of
    ``stores.redis_url``) unless ``shared`` is off."""
    if not config.enabled:
        return None
    if redis is not None and config.shared:
        return RedisBreaker(config, redis)
    return MemoryBreaker(config)
