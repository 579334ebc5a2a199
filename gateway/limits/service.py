"""Build the limits step once at start: Redis when app.py hands it a client, else memory."""

from __future__ import annotations

from gateway.config import GatewayConfig
from gateway.limits.memory import MemoryStore
from gateway.limits.redis import RedisStore
from gateway.limits.step import Limits
from gateway.limits.store import Store
from gateway.stores import RedisClient

__all__ = ["build_limits"]


def build_limits(config: GatewayConfig, redis: RedisClient | None = None) -> Limits:
    """``redis``: the limits' client of ``stores.redis_url`` (None: counters in memory)."""
    store: Store = RedisStore(redis) if redis is not None else MemoryStore()
    return Limits(store, config.models, config.stores.key_prefix)
