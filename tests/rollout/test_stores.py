"""The rollout's two stores, each body run on both implementations: the switches (the
policies folder's file, real Redis) and the windowed signals (memory, real Redis)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.rollout.flags import FileFlags, FlagStore, RedisFlags, entry
from gateway.rollout.signals import MemorySignals, RedisSignals, SignalStore, slice_of
from gateway.stores.redis import RedisClient, open_redis
from tests.rollout.conftest import REDIS_URL, drop_keys


@pytest.fixture
async def redis_client() -> AsyncIterator[RedisClient]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    client = open_redis(REDIS_URL, user="rollout", prefix=prefix, timeout_s=1.0)
    try:
        yield client
    finally:
        await client.aclose()
        await drop_keys(prefix)


@pytest.fixture(params=["file", "redis"])
def flags(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "file":
        return FileFlags(tmp_path)
    return request.getfixturevalue("redis_client")


@pytest.fixture(params=["memory", "redis"])
def signals(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return MemorySignals()
    return request.getfixturevalue("redis_client")


def flag_store(made: Any) -> FlagStore:
    return RedisFlags(made) if isinstance(made, RedisClient) else made  # type: ignore[no-any-return]


def signal_store(made: Any) -> SignalStore:
    return RedisSignals(made) if isinstance(made, RedisClient) else made  # type: ignore[no-any-return]


async def test_pause_resume_and_abort_once(flags: Any) -> None:
    store = flag_store(flags)
    assert (await store.read()).paused == {}
    await store.pause("w", entry(reason="incident", by="root"))
    read = await store.read()
    assert read.paused["w"]["reason"] == "incident" and read.paused["w"]["by"] == "root"
    assert await store.resume("w") is True
    assert await store.resume("w") is False
    assert (await store.read()).paused == {}

    assert await store.abort("w", "sha256:a", entry(signal="error_rate")) is True
    assert await store.abort("w", "sha256:a", entry(signal="block_rate")) is False  # first wins
    assert await store.abort("w", "sha256:b", entry(signal="block_rate")) is True
    aborted = (await store.read()).aborted
    assert aborted[("w", "sha256:a")]["signal"] == "error_rate"
    assert set(aborted) == {("w", "sha256:a"), ("w", "sha256:b")}


async def test_two_readers_see_one_writer(flags: Any, tmp_path: Path) -> None:
    if isinstance(flags, RedisClient):
        writer, reader = RedisFlags(flags), RedisFlags(flags)
    else:
        writer, reader = FileFlags(tmp_path), FileFlags(tmp_path)
    await reader.read()
    await writer.pause("w", entry(reason="x"))
    assert "w" in (await reader.read()).paused
    await writer.resume("w")
    assert "w" not in (await reader.read()).paused


async def test_the_window_adds_its_ten_slices_and_forgets_older_ones(signals: Any) -> None:
    store = signal_store(signals)
    length, now = slice_of(1_000_000.0, 100)  # ten-second slices
    assert length == 10
    for i in range(now - 12, now + 1):  # thirteen slices, one request each
        await store.add("w", "v1", length, i, {"requests": 1.0, "errors": 0.5, "l3": 1.0})
    await store.add("w", "v2", length, now, {"requests": 7.0})
    window = await store.window("w", "v1", length, now)
    assert window == {"requests": 10.0, "errors": 5.0, "l3": 10.0}
    assert (await store.window("w", "v2", length, now))["requests"] == 7.0
    assert await store.window("other", "v1", length, now) == {}
