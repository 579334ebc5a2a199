"""The token vault: the same tests on process memory and on real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway.boundary.vault import MemoryVault, RedisVault, Vault
from gateway.stores import StoreError, open_redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_vault(url: str = REDIS_URL) -> RedisVault:
    """The vault as app.py builds it (default prefix ``gw``), with a generous bound: these
    tests check what is stored (tests/stores/test_freeze.py checks the bounds)."""
    return RedisVault(open_redis(url, user="vault", timeout_s=2.0, decode_responses=True))


@pytest.fixture(params=["memory", "redis"])
async def vault(request: pytest.FixtureRequest) -> AsyncIterator[Vault]:
    v: Vault = MemoryVault() if request.param == "memory" else redis_vault()
    try:
        yield v
    finally:
        await v.aclose()


@pytest.fixture
def workflow() -> str:
    return f"wf-{uuid.uuid4().hex[:8]}"  # fresh keys per test on the shared Redis


async def test_values_are_per_workflow_and_caller(vault: Vault, workflow: str) -> None:
    await vault.put(workflow, "alice", {"<E#a>": "a@x.io", "<E#b>": "b@x.io"}, 60)
    assert await vault.get(workflow, "alice", ["<E#a>", "<E#b>", "<E#c>"]) == {
        "<E#a>": "a@x.io",
        "<E#b>": "b@x.io",
    }
    assert await vault.get(workflow, "bob", ["<E#a>"]) == {}
    assert await vault.get(workflow + "-other", "alice", ["<E#a>"]) == {}
    assert await vault.get(workflow, "alice", []) == {}


async def test_entries_expire(vault: Vault, workflow: str) -> None:
    await vault.put(workflow, "alice", {"<E#a>": "a@x.io"}, 1)
    assert await vault.get(workflow, "alice", ["<E#a>"]) == {"<E#a>": "a@x.io"}
    await asyncio.sleep(1.2)
    assert await vault.get(workflow, "alice", ["<E#a>"]) == {}


async def test_redis_keys_are_hash_tagged_by_workflow(workflow: str) -> None:
    vault = redis_vault()
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await vault.put(workflow, "alice", {"<E#a>": "a@x.io"}, 60)
        keys = await client.keys(f"gw:vault:{{{workflow}}}:*")
        assert keys == [f"gw:vault:{{{workflow}}}:alice:<E#a>".encode()]
        assert 0 < await client.ttl(keys[0]) <= 60
    finally:
        await client.aclose()
        await vault.aclose()


async def test_memory_vault_evicts_the_oldest_at_its_bound() -> None:
    vault = MemoryVault(max_entries=2)
    await vault.put("w", "s", {"t1": "1", "t2": "2"}, 60)
    await vault.put("w", "s", {"t3": "3"}, 60)
    assert await vault.get("w", "s", ["t1", "t2", "t3"]) == {"t2": "2", "t3": "3"}


async def test_redis_down_is_one_vault_error() -> None:
    vault = redis_vault("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(StoreError):
            await vault.put("w", "s", {"t": "v"}, 60)
        with pytest.raises(StoreError):
            await vault.get("w", "s", ["t"])
    finally:
        await vault.aclose()


async def test_memory_vault_drops_expired_entries_as_it_goes() -> None:
    vault = MemoryVault()
    await vault.put("w", "s", {"t1": "1"}, 1)
    await asyncio.sleep(1.1)
    await vault.put("w", "s", {"t2": "2"}, 60)
    assert len(vault) == 1
