"""Where tokenized values wait to be restored: process memory, or Redis shared by instances.

Entries are per workflow and per caller (``subject``): a token is restored only in answers
to the caller whose request minted it, and never in another workflow. Each entry expires
after the policy's ``token_ttl_s``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

from gateway.stores import RedisClient
from gateway.stores.redis import Client

__all__ = ["MemoryVault", "RedisVault", "Vault"]


class Vault(Protocol):
    """A backend that fails raises ``gateway.stores.StoreError``."""

    async def put(self, workflow: str, subject: str, items: Mapping[str, str], ttl_s: int) -> None:
        """Store ``token -> value`` pairs for ``ttl_s`` seconds (a put renews the expiry)."""
        ...

    async def get(self, workflow: str, subject: str, tokens: list[str]) -> dict[str, str]:
        """The values of those ``tokens`` that this workflow's caller stored and still live."""
        ...

    async def aclose(self) -> None: ...


class MemoryVault:
    """One process's vault. Entries are kept in the order they were last stored, so expired
    ones are dropped from the front on each put; at ``max_entries`` the oldest make room."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._entries: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._entries)

    async def put(self, workflow: str, subject: str, items: Mapping[str, str], ttl_s: int) -> None:
        now = time.monotonic()
        for token, value in items.items():
            key = (workflow, subject, token)
            self._entries.pop(key, None)  # re-insert at the end: the newest
            self._entries[key] = (value, now + ttl_s)
        entries = self._entries
        while entries:
            oldest = next(iter(entries))
            if len(entries) <= self._max and entries[oldest][1] > now:
                break
            del entries[oldest]

    async def get(self, workflow: str, subject: str, tokens: list[str]) -> dict[str, str]:
        now = time.monotonic()
        found = {}
        for token in tokens:
            entry = self._entries.get((workflow, subject, token))
            if entry is not None and entry[1] > now:
                found[token] = entry[0]
        return found

    async def aclose(self) -> None:
        self._entries.clear()


class RedisVault:
    """Entries as ``<prefix>:vault:{workflow}:subject:token`` strings with an expiry.

    The hash tag keeps one workflow's entries in one Redis Cluster slot, so a lookup of many
    tokens is one MGET and a put is one pipelined round trip, each within the client's bound
    (``vault.store_timeout_ms``).
    """

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    def _key(self, workflow: str, subject: str, token: str) -> str:
        return self._redis.key(workflow, subject, token)

    async def put(self, workflow: str, subject: str, items: Mapping[str, str], ttl_s: int) -> None:
        keys = {self._key(workflow, subject, token): value for token, value in items.items()}

        async def write(client: Client) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for key, value in keys.items():
                    pipe.set(key, value, ex=ttl_s)
                await pipe.execute()

        await self._redis.call(write)

    async def get(self, workflow: str, subject: str, tokens: list[str]) -> dict[str, str]:
        if not tokens:
            return {}
        keys = [self._key(workflow, subject, t) for t in tokens]

        async def read(client: Client) -> list[bytes | str | None]:
            return await client.mget(keys)

        values = await self._redis.call(read)
        return {t: str(v) for t, v in zip(tokens, values, strict=True) if v is not None}

    async def aclose(self) -> None:
        await self._redis.aclose()
