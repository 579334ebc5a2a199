"""The JWKS refresher's bounds, with short intervals, against a real local JWKS server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from gateway.auth.jwks import RemoteKeys
from tests.fakes.jwks import JwksServer
from tests.support.tokens import Idp, jwk, rsa_key


@pytest.fixture
def provider(idp: Idp) -> Iterator[JwksServer]:
    server = JwksServer([jwk(idp.rsa, "k1")]).start()
    yield server
    server.stop()


def _remote(provider: JwksServer, changes: list[int]) -> RemoteKeys:
    return RemoteKeys(
        provider.url,
        ["RS256"],
        lambda: changes.append(1),
        min_interval_s=0.3,
        max_age_s=0.1,
        timeout_s=1.0,
    )


async def test_stale_keys_refresh_in_the_background_at_most_once_per_interval(
    provider: JwksServer,
) -> None:
    changes: list[int] = []
    remote = _remote(provider, changes)
    await remote.start()
    assert [k.kid for k in remote.keys] == ["k1"] and changes == [1]
    provider.status = 500  # the provider breaks
    await asyncio.sleep(0.15)  # keys are now stale
    started = time.monotonic()
    for _ in range(50):  # every request would like a refresh
        remote.keep_fresh()
        await asyncio.sleep(0.01)  # about 0.5 s of traffic (longer on a busy machine)
    elapsed = time.monotonic() - started
    await remote.aclose()
    # start-up, then one refresh per 0.3 s interval at most, never one per request
    assert 2 <= provider.fetches <= 2 + int(elapsed / 0.3)
    assert remote.failing and [k.kid for k in remote.keys] == ["k1"]  # last good keys kept


async def test_rotation_is_picked_up_in_the_background(provider: JwksServer) -> None:
    changes: list[int] = []
    remote = _remote(provider, changes)
    await remote.start()
    provider.set_keys([jwk(rsa_key(), "k2")])
    await asyncio.sleep(0.15)
    remote.keep_fresh()  # starts the refresh and returns at once
    assert [k.kid for k in remote.keys] == ["k1"]
    for _ in range(100):
        if [k.kid for k in remote.keys] == ["k2"]:
            break
        await asyncio.sleep(0.01)
    assert [k.kid for k in remote.keys] == ["k2"] and changes == [1, 1]
    await remote.aclose()


async def test_unchanged_keys_do_not_clear_the_cache(provider: JwksServer) -> None:
    changes: list[int] = []
    remote = _remote(provider, changes)
    await remote.start()
    await asyncio.sleep(0.35)
    await remote.refresh_for_unknown_kid()
    assert provider.fetches == 2 and changes == [1]
    await remote.aclose()


async def test_oversized_or_invalid_documents_keep_the_last_good_keys(provider: JwksServer) -> None:
    remote = _remote(provider, [])
    await remote.start()
    key = rsa_key()
    provider.set_keys([jwk(key, f"k{i}") for i in range(1500)])  # over 512 KB
    await asyncio.sleep(0.35)
    await remote.refresh_for_unknown_kid()
    assert remote.failing and [k.kid for k in remote.keys] == ["k1"]
    await remote.aclose()
