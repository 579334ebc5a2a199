"""Limits fixtures: one store fixture parametrized over memory, the real Redis and a real
Redis Cluster (tests/stores/cluster.py; a key prefix of its own per test, its keys deleted
after), and helpers to build asks."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import openai
import pytest

from gateway.limits.memory import MemoryStore
from gateway.limits.redis import RedisStore
from gateway.limits.store import Store
from gateway.stores import open_redis
from tests.conftest import UPSTREAM_KEYS, gateway_config
from tests.fakes.upstream import FakeUpstream
from tests.stores.cluster import shared_cluster
from tests.support.clients import anthropic_client, openai_client
from tests.support.server import GatewayServer, new_key, write_yaml

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_store(url: str = REDIS_URL) -> RedisStore:
    """A store on the shared Redis, from the one factory; a generous bound, as these tests
    check what is counted, not how fast (tests/stores/test_freeze.py checks the bounds)."""
    return RedisStore(open_redis(url, user="lim", timeout_s=2.0))


def new_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def drop_keys(prefix: str, url: str = REDIS_URL) -> None:
    """Delete this test's keys only: the shared Redis is never flushed."""
    client = open_redis(url, user="lim", timeout_s=5.0).raw
    try:
        keys = [k async for k in client.scan_iter(match=f"{{{prefix}:lim*", count=1000)]
        for key in keys:  # one by one: on a Cluster they span slots
            await client.delete(key)
    finally:
        await client.aclose()


def cluster_url() -> str:
    """The session's Redis Cluster (started on first use, shared with tests/stores)."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server and redis-cli are needed (.ci/run installs them)")
    return shared_cluster().url


@pytest.fixture
def prefix() -> str:
    return new_prefix()


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    url = cluster_url() if request.param == "cluster" else REDIS_URL
    shared = redis_store(url)
    try:
        yield shared
    finally:
        await shared.aclose()
        await drop_keys(prefix, url)


# --------------------------------------------------------------------------- gateway fixtures

PRICED = {  # USD per million tokens: 1 micro-dollar per input token, 2 per output token
    "gpt-test": {"provider": "openai", "upstream_model": "gpt-up",
                 "usd_per_mtok_in": 1.0, "usd_per_mtok_out": 2.0},
    "claude-test": {"provider": "anthropic", "upstream_model": "claude-up",
                    "usd_per_mtok_in": 1.0, "usd_per_mtok_out": 2.0},
    "gpt-backup": {"provider": "openai", "upstream_model": "gpt-backup-up",
                   "usd_per_mtok_in": 1.0, "usd_per_mtok_out": 2.0},
    "mock-model": {"provider": "demo", "upstream_model": "mock-1"},  # unpriced
}  # fmt: skip
VAULT_KEY = "v" * 32


def _policy(name: str, limits: dict[str, object], max_out: int = 100) -> dict[str, object]:
    return {
        "workflow": name,
        "owner": "tests@example.com",
        "access": {
            "roles": ["analyst"],
            "models": ["gpt-test", "claude-test"],
            "max_output_tokens": max_out,
        },
        "upstream": {"timeout_s": 5, "retries": 0},
        "limits": limits,
    }


LIMIT_POLICIES = {
    "rated": _policy(
        "rated",
        {"rate": [{"per": "user", "requests_per_minute": 3, "tokens_per_minute": 100_000}]},
    ),
    # A request reserves about 25 input + 100 output tokens: ~225 micro-USD of the 300.
    "budgeted": _policy("budgeted", {"budget": [{"per": "user", "usd_per_day": 0.0003}]}),
    "shadowed": {
        **_policy("shadowed", {"rate": [{"per": "user", "requests_per_minute": 1}]}),
        "mode": "shadow",
    },
    # A quality check that refuses the first answer: both answers were paid for.
    "checked": {
        **_policy("checked", {"budget": [{"per": "user", "usd_per_day": 0.001}]}),
        "quality": {"min_avg_logprob": -1.0},
        "fallback": {"on": ["low_confidence"], "models": ["gpt-backup"]},
    },
    "clamped": _policy(
        "clamped",
        {"budget": [{"per": "user", "usd_per_day": 0.0003}], "budget_clamp": True},
        max_out=1000,
    ),
}


@dataclass
class LimitedGateway:
    url: str
    root: Path
    prefix: str
    backend: str
    keys: list[str]
    admin_key: str = ""

    def key(self) -> str:
        """A caller of its own (subject ``user-N``), so tests never share a counter."""
        return self.keys.pop()

    def openai(self, workflow: str, key: str) -> openai.OpenAI:
        return openai_client(base_url=f"{self.url}/w/{workflow}/v1", api_key=key, max_retries=0)

    def anthropic(self, workflow: str, key: str) -> anthropic.Anthropic:
        return anthropic_client(base_url=f"{self.url}/w/{workflow}", api_key=key, max_retries=0)


def write_gateway(
    root: Path,
    upstream: FakeUpstream,
    prefix: str,
    redis_url: str | None,
    policies: dict[str, dict[str, object]],
    callers: int = 40,
    models: dict[str, dict[str, object]] | None = None,
    store_timeout_ms: float | None = None,
) -> tuple[Path, list[str]]:
    """``store_timeout_ms``: for tests of exact counts, not of a slow store, a bound generous
    enough that a loaded CI machine never turns a slow answer into a refusal."""
    config = {
        **gateway_config(upstream),
        "models": models or PRICED,
        "stores": {"key_prefix": prefix, **({"redis_url": redis_url} if redis_url else {})},
        "audit": {"purge_interval_s": 0},
        **({"limits": {"store_timeout_ms": store_timeout_ms}} if store_timeout_ms else {}),
    }
    path = write_yaml(root / "gateway.yaml", config)
    for name, policy in policies.items():
        write_yaml(root / "policies" / f"{name}.yaml", policy)
    keys = [new_key(root / "keys.yaml", f"user-{i}", ["analyst"]) for i in range(callers)]
    return path, keys


@pytest.fixture(scope="module", params=["memory", "redis", "cluster"])
def limited(
    request: pytest.FixtureRequest,
    upstream: FakeUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LimitedGateway]:
    root = tmp_path_factory.mktemp(f"limits-{request.param}")
    prefix = new_prefix()
    redis_url: str | None = None
    if request.param == "redis":
        redis_url = REDIS_URL
    elif request.param == "cluster":
        redis_url = cluster_url()
    path, keys = write_gateway(
        root, upstream, prefix, redis_url, LIMIT_POLICIES, store_timeout_ms=5000
    )
    admin = new_key(root / "keys.yaml", "root", ["admin"])
    server = GatewayServer(path, {**UPSTREAM_KEYS, "GATEWAY_VAULT_KEY": VAULT_KEY}).start()
    try:
        yield LimitedGateway(server.url, root, prefix, request.param, keys, admin)
    finally:
        server.stop()
        if redis_url:
            asyncio.run(drop_keys(prefix, redis_url))
