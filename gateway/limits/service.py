"""Build the limits step once at start: Redis when ``stores.redis_url`` is set, else memory."""

from __future__ import annotations

from gateway.config import GatewayConfig
from gateway.limits.memory import MemoryStore
from gateway.limits.redis import RedisStore
from gateway.limits.step import Limits
from gateway.limits.store import Store

__all__ = ["build_limits"]


def build_limits(config: GatewayConfig) -> Limits:
    url = config.stores.redis_url
    store: Store = RedisStore(url) if url else MemoryStore()
    return Limits(store, config.models, config.limits.key_prefix)
