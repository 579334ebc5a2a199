"""The circuit breaker: the same state machine in memory and in the real Redis, then through
the gateway, measured at the fake upstream: no call while open, one probe, then closed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from gateway.config import BreakerConfig
from gateway.stores import RedisClient, open_redis
from gateway.upstream.breaker import Breaker, MemoryBreaker, RedisBreaker
from tests.audit.conftest import AuditedGateway
from tests.conftest import UPSTREAM_KEYS, gateway_config
from tests.fakes.upstream import FakeUpstream, Reply, Status
from tests.fallback.client import ask
from tests.support.privateredis import PrivateRedis
from tests.support.server import GatewayServer, new_key, write_yaml

REDIS_URL = "redis://127.0.0.1:6379/0"
OPEN_S = 0.3


def _config(**changes: object) -> BreakerConfig:
    values: dict[str, object] = {"failures": 3, "open_s": OPEN_S, "min_calls": 100}
    return BreakerConfig.model_validate({**values, **changes})


def _redis(url: str = REDIS_URL, prefix: str | None = None) -> RedisClient:
    """The breaker's client of the shared Redis, under a key prefix of its own (so these tests
    never touch another run's circuits), with a generous bound: the bound is
    tests/stores/test_freeze.py's business."""
    prefix = prefix or f"test-{uuid.uuid4().hex[:12]}"
    return open_redis(url, user="breaker", prefix=prefix, timeout_s=2.0)


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[type]:
    made: list[Breaker] = []

    def build(**changes: object) -> Breaker:
        config = _config(**changes)
        breaker: Breaker = (
            MemoryBreaker(config) if request.param == "memory" else RedisBreaker(config, _redis())
        )
        made.append(breaker)
        return breaker

    yield build  # type: ignore[misc]
    for breaker in made:
        await breaker.aclose()
    if request.param == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        for breaker in made:
            assert isinstance(breaker, RedisBreaker)
            keys = list(client.scan_iter(match=f"{breaker.namespace}:*"))
            if keys:
                client.delete(*keys)
        client.close()


async def test_opens_after_consecutive_failures_then_probes_and_closes(make) -> None:  # type: ignore[no-untyped-def]
    b = make()
    for _ in range(2):
        assert await b.allow("p/m")
        await b.record("p/m", False)
    await b.record("p/m", True)  # a success resets the run
    for _ in range(3):
        assert await b.allow("p/m")
        await b.record("p/m", False)
    assert not await b.allow("p/m")  # open: fail fast
    assert await b.allow("p/other")  # per provider and model
    await asyncio.sleep(OPEN_S + 0.05)
    assert await b.allow("p/m")  # half-open: this one is the probe ...
    assert not await b.allow("p/m")  # ... and the only one
    await b.record("p/m", True)
    assert await b.allow("p/m") and await b.allow("p/m")  # closed


async def test_failed_probe_opens_again(make) -> None:  # type: ignore[no-untyped-def]
    b = make(failures=1)
    await b.record("p/m", False)
    assert not await b.allow("p/m")
    await asyncio.sleep(OPEN_S + 0.05)
    assert await b.allow("p/m")
    await b.record("p/m", False)
    assert not await b.allow("p/m")
    await asyncio.sleep(OPEN_S + 0.05)
    assert await b.allow("p/m")


async def test_error_rate_over_the_window_opens(make) -> None:  # type: ignore[no-untyped-def]
    b = make(failures=100, min_calls=10, error_rate=0.5, window_s=30)
    for i in range(9):
        await b.record("p/m", i % 2 == 0)  # 4 of 9 failed, never two in a row
    assert await b.allow("p/m")
    await b.record("p/m", False)  # 5 of 10
    assert not await b.allow("p/m")


async def test_two_instances_share_one_redis_circuit() -> None:
    config, prefix = _config(failures=2), f"test-{uuid.uuid4().hex[:12]}"
    a = RedisBreaker(config, _redis(prefix=prefix))
    b = RedisBreaker(config, _redis(prefix=prefix))
    try:
        await a.record("p/m", False)
        await b.record("p/m", False)
        assert not await a.allow("p/m") and not await b.allow("p/m")
        await asyncio.sleep(OPEN_S + 0.05)
        probes = await asyncio.gather(a.allow("p/m"), b.allow("p/m"), a.allow("p/m"))
        assert sorted(probes) == [False, False, True]  # exactly one probe among instances
    finally:
        await a.aclose()
        await b.aclose()


async def test_unreachable_redis_fails_open() -> None:
    b = RedisBreaker(_config(failures=1), _redis("redis://127.0.0.1:1/0"))
    await b.record("p/m", False)
    assert await b.allow("p/m")
    await b.aclose()


@pytest.fixture
def private() -> Iterator[PrivateRedis]:
    redis = PrivateRedis()
    redis.start()
    try:
        yield redis
    finally:
        redis.destroy()


async def test_frozen_store_keeps_the_last_known_state_and_backs_off(
    private: PrivateRedis,
) -> None:
    """Redis frozen: the first call pays the bound (50 ms), the calls within the back-off
    none; an open circuit stays open until ``open_s`` after the store last said so, others
    fail open. Thawed, past the back-off, the store decides again."""
    config = _config(failures=1, store_timeout_ms=50, store_backoff_ms=400)
    b = RedisBreaker(config, open_redis(private.url, user="breaker", timeout_s=0.05))
    try:
        await b.record("p/open", False)  # the store opens it
        assert not await b.allow("p/open") and await b.allow("p/closed")
        private.freeze()
        started = time.perf_counter()
        assert not await b.allow("p/open")  # the store's last word
        first = time.perf_counter() - started
        started = time.perf_counter()
        assert await b.allow("p/closed")  # fail open
        await b.record("p/closed", False)  # not counted anywhere: the store is away
        assert await b.allow("p/closed")
        rest = time.perf_counter() - started
        assert 0.04 < first < 0.5 and rest < 0.02, (first, rest)
        assert b.unreachable == 4
        await asyncio.sleep(OPEN_S + 0.05)  # past open_s: the circuit would half-open
        assert await b.allow("p/open")
        private.thaw()
        await asyncio.sleep(0.45)  # past the back-off
        assert b.unreachable == 5
        await b.record("p/closed", False)  # counted by the store again: it opens
        assert not await b.allow("p/closed")
        assert b.unreachable == 5
    finally:
        private.thaw()
        await b.aclose()


POLICY = {
    "workflow": "guarded",
    "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["gpt-test"]},
    "upstream": {"timeout_s": 5, "retries": 0},
    "fallback": {"on": ["upstream_error", "circuit_open"], "message": "try later"},
}


def _start(
    root: Path, upstream: FakeUpstream, prefix: str, redis: bool
) -> tuple[AuditedGateway, GatewayServer]:
    # A generous store timeout: these tests are about sharing the breaker's state, and a loaded
    # host once kept Redis past the default 50 ms, so instance b failed open on its own state.
    # A store that does not answer in time is tested above and in tests/stores/test_freeze.py.
    breaker = {"failures": 2, "open_s": 0.5, "store_timeout_ms": 1000}
    config = {**gateway_config(upstream), "breaker": breaker, "audit": {"purge_interval_s": 0}}
    if redis:
        config["stores"] = {"redis_url": REDIS_URL, "key_prefix": prefix}
    write_yaml(root / "policies" / "guarded.yaml", POLICY)
    key = new_key(root / "keys.yaml", "alice", ["analyst"])
    env = {**UPSTREAM_KEYS, "GATEWAY_VAULT_KEY": "v" * 32}
    server = GatewayServer(write_yaml(root / "gateway.yaml", config), env).start()
    return AuditedGateway(server.url, key, "", root, db=root / "audit.db"), server


@pytest.fixture(params=["memory", "redis"])
def guarded(
    request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuditedGateway]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    root = tmp_path_factory.mktemp("guarded")
    gw, server = _start(root, upstream, prefix, request.param == "redis")
    try:
        yield gw
    finally:
        server.stop()


def test_instances_sharing_redis_fail_fast_together(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    a, server_a = _start(tmp_path_factory.mktemp("a"), upstream, prefix, True)
    b, server_b = _start(tmp_path_factory.mktemp("b"), upstream, prefix, True)
    try:
        upstream.script("gpt-up", Status(500), Status(500))
        for _ in range(2):  # two failures through instance a open the circuit
            assert ask(a, "openai", "guarded", False)[1]["x-gateway-fallback"] == "upstream.error"
        # Instance b never saw a failure, yet fails fast: the fake upstream gets no call.
        _, headers, _ = ask(b, "openai", "guarded", False)
        assert headers["x-gateway-fallback"] == "upstream.circuit_open"
        assert len(upstream.requests_for("gpt-up")) == 2
    finally:
        server_a.stop()
        server_b.stop()


def test_circuit_opens_fails_fast_half_opens_and_closes(
    guarded: AuditedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Status(500), Status(500))
    for _ in range(2):
        text, headers, _ = ask(guarded, "openai", "guarded", False)
        assert (text, headers["x-gateway-fallback"]) == ("try later", "upstream.error")
    assert len(upstream.requests_for("gpt-up")) == 2
    # Open: answered at once from the fallback, and the upstream sees no call at all.
    for stream in (False, True):
        started = time.perf_counter()
        text, headers, _ = ask(guarded, "openai", "guarded", stream)
        assert time.perf_counter() - started < 0.25
        assert (text, headers["x-gateway-fallback"]) == ("try later", "upstream.circuit_open")
    assert len(upstream.requests_for("gpt-up")) == 2
    r = guarded.one(headers["x-request-id"], wait=2)
    assert (r.reasons, r.attempts, r.fallback) == (["upstream.circuit_open"], 0, "message")
    time.sleep(0.55)
    upstream.script("gpt-up", Reply("healthy again"))
    text, headers, _ = ask(guarded, "openai", "guarded", False)  # the probe
    assert text == "healthy again" and "x-gateway-fallback" not in headers
    text, _, _ = ask(guarded, "openai", "guarded", False)  # closed: traffic flows
    assert text.startswith("echo:") and len(upstream.requests_for("gpt-up")) == 4
