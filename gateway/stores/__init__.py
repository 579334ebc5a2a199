"""Shared state on existing engines: one Redis factory (plain, TLS, Unix socket, Cluster)."""

from gateway.stores.redis import RedisClient, Script, StoreError, open_redis

__all__ = ["RedisClient", "Script", "StoreError", "open_redis"]
