"""Build the limits step once at start: Redis when app.py hands it a client, else memory."""

from __future__ import annotations

from gateway import errors
from gateway.config import GatewayConfig
from gateway.errors import GatewayError
from gateway.limits.memory import MemoryStore
from gateway.limits.redis import RedisStore
from gateway.limits.step import Limits
from gateway.limits.store import Ask, BudgetUsage, Settlement, Store, StoreError, Verdict
from gateway.stores import RedisClient

__all__ = ["PerProcessRefused", "build_limits"]

_PER_PROCESS = (
    "limits kept in memory would count once per worker process: set stores.redis_url "
    "(or serve with --workers 1)"
)


class PerProcessRefused:
    """The store of several workers without Redis (gateway/workers.py): no policy with limits
    passes start-up, so this only meets one hot-reloaded later, and refuses it whatever its
    ``fail_open`` says, rather than limit it once per process."""

    async def admit(self, ask: Ask) -> Verdict:
        raise GatewayError(errors.LIMITS_STORE_UNAVAILABLE, detail=_PER_PROCESS)

    async def settle(self, settlement: Settlement) -> None:
        return None

    async def usage(self, keys: list[str]) -> dict[str, BudgetUsage]:
        raise StoreError(_PER_PROCESS)

    async def rate_tat(self, keys: list[str]) -> dict[str, float]:
        raise StoreError(_PER_PROCESS)

    async def scan(self, pattern: str) -> list[str]:
        return []

    async def aclose(self) -> None:
        return None


def build_limits(
    config: GatewayConfig, redis: RedisClient | None = None, workers: int = 1
) -> Limits:
    """``redis``: the limits' client of ``stores.redis_url``; without it counters live in
    memory (one worker) or are refused (several)."""
    local: Store = MemoryStore() if workers == 1 else PerProcessRefused()
    store: Store = RedisStore(redis) if redis is not None else local
    return Limits(store, config.models, config.stores.key_prefix)
