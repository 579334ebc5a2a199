"""The clients of ``stores.redis_url``, one per user, each from the one factory with its own
bound. app.py builds them once and hands each to its step."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.stores.redis import RedisClient, open_redis

__all__ = ["SharedRedis", "shared_redis"]


@dataclass(frozen=True, slots=True)
class SharedRedis:
    """The clients of ``stores.redis_url``, one per user, each with its own bound: a call
    that gets no answer costs a request at most ``limits.store_timeout_ms``,
    ``vault.store_timeout_ms`` or ``breaker.store_timeout_ms``."""

    limits: RedisClient
    vault: RedisClient
    breaker: RedisClient | None  # None: no breaker, or circuits per instance

    async def aclose(self) -> None:
        """Close every client (in the server, each step closes its own instead)."""
        for client in (self.limits, self.vault, self.breaker):
            if client is not None:
                await client.aclose()


def shared_redis(config: GatewayConfig) -> SharedRedis | None:
    """One client per Redis user, all from the one factory; None without ``stores.redis_url``.
    Nothing is contacted until a request needs it."""
    url, prefix = config.stores.redis_url, config.stores.key_prefix
    if url is None:
        return None
    breaker = config.breaker
    return SharedRedis(
        limits=open_redis(
            url, user="lim", prefix=prefix, timeout_s=config.limits.store_timeout_ms / 1000
        ),
        vault=open_redis(
            url,
            user="vault",
            prefix=prefix,
            timeout_s=config.vault.store_timeout_ms / 1000,
            decode_responses=True,
        ),
        breaker=open_redis(
            url, user="breaker", prefix=prefix, timeout_s=breaker.store_timeout_ms / 1000
        )
        if breaker.enabled and breaker.shared
        else None,
    )
