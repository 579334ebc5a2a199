"""A circuit breaker per provider and model: after ``failures`` consecutive failed attempts,
or an ``error_rate`` over ``window_s`` (with at least ``min_calls`` attempts), the circuit
opens and attempts fail fast (``upstream.circuit_open``, straight to the fallback) for
``open_s``; then one attempt goes through as a probe: success closes the circuit, failure
opens it again.

State is per process (``MemoryBreaker``) or shared by every instance through one atomic Lua
script (``RedisBreaker``, with ``stores.redis_url``). A Redis that cannot be reached fails
open: the breaker protects the provider, it must not take the gateway down with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.config import BreakerConfig

__all__ = ["Breaker", "MemoryBreaker", "RedisBreaker", "build_breaker"]

log = logging.getLogger("gateway.upstream")


class Breaker(Protocol):
    async def allow(self, key: str) -> bool:
        """False while the circuit is open (or its one probe is out): fail fast."""
        ...

    async def record(self, key: str, ok: bool) -> None:
        """The outcome of an attempt that ``allow`` let through."""
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

    async def aclose(self) -> None:
        self._circuits.clear()


_SCRIPT = resources.files("gateway.upstream").joinpath("lua/breaker.lua").read_text()


class RedisBreaker:
    """Circuits as hashes ``{prefix}{provider/model}`` (the hash tag puts each in one Redis
    Cluster slot), changed only by lua/breaker.lua."""

    def __init__(self, config: BreakerConfig, url: str) -> None:
        self._config = config
        self._prefix = config.redis_prefix
        self._redis = aioredis.Redis.from_url(url)
        self._script = self._redis.register_script(_SCRIPT)

    async def _run(self, key: str, op: str, ok: bool = True) -> int | None:
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
            return int(await self._script(keys=[f"{self._prefix}{{{key}}}"], args=args))
        except RedisError as exc:
            log.warning("circuit breaker store unavailable (%s): failing open", type(exc).__name__)
            return None

    async def allow(self, key: str) -> bool:
        return await self._run(key, "allow") != 0

    async def record(self, key: str, ok: bool) -> None:
        if await self._run(key, "record", ok) == 0 and not ok:
            log.warning("circuit %s is open", key)

    async def aclose(self) -> None:
        await self._redis.aclose()


def build_breaker(config: BreakerConfig, redis_url: str | None) -> Breaker | None:
    """None when the breaker is disabled."""
    if not config.enabled:
        return None
    if redis_url and config.shared:
        return RedisBreaker(config, redis_url)
    return MemoryBreaker(config)
