"""The one Redis factory: which client each URL makes (without contacting a server), the key
rule, and that every failure is one StoreError within the client's bound."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection

from gateway.config import StoresConfig
from gateway.stores import RedisClient, Script, StoreError, open_redis

REDIS_URL = "redis://127.0.0.1:6379/0"
# TEST-NET-1 (RFC 5737): nothing answers there, so a client that connected would hang.
NOWHERE = "192.0.2.1:7000"


@pytest.mark.parametrize(
    ("url", "cluster", "tls"),
    [
        (f"redis://{NOWHERE}/0", False, False),
        (f"rediss://{NOWHERE}/0", False, True),
        (f"redis+cluster://{NOWHERE}", True, False),
        (f"rediss+cluster://{NOWHERE}", True, True),
        (f"REDIS+CLUSTER://{NOWHERE}", True, False),
    ],
)
async def test_the_scheme_picks_the_client(url: str, cluster: bool, tls: bool) -> None:
    client = open_redis(url, user="vault", timeout_s=0.25)
    raw = client.raw
    assert client.cluster is cluster
    if cluster:
        assert isinstance(raw, RedisCluster)
        assert raw.connection_kwargs["socket_timeout"] == 0.25
        assert raw.connection_kwargs["socket_connect_timeout"] == 0.25
        assert (raw.connection_kwargs["connection_class"] is SSLConnection) is tls
        assert raw.retry.get_retries() == 0  # no retries multiplying the bound
    else:
        assert isinstance(raw, Redis)
        kwargs = raw.connection_pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.25, 0.25)
        assert (raw.connection_pool.connection_class is SSLConnection) is tls
        assert kwargs["retry"].get_retries() == 0
    await client.aclose()


async def test_unix_socket_url() -> None:
    client = open_redis("unix:///run/redis/redis.sock?db=2", user="lim", timeout_s=0.25)
    assert isinstance(client.raw, Redis)
    pool = client.raw.connection_pool
    assert pool.connection_class is UnixDomainSocketConnection
    assert (pool.connection_kwargs["path"], pool.connection_kwargs["db"]) == (
        "/run/redis/redis.sock",
        2,
    )
    await client.aclose()


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "127.0.0.1:6379", "memcached://x"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="a Redis URL starts with"):
        open_redis(url, user="lim", timeout_s=0.25)
    with pytest.raises(ValidationError):
        StoresConfig(redis_url=url)


def test_config_takes_every_scheme_and_one_prefix() -> None:
    for scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        assert StoresConfig(redis_url=f"{scheme}://h:1").redis_url == f"{scheme}://h:1"
    assert StoresConfig(redis_url="unix:///tmp/r.sock").key_prefix == "gw"
    with pytest.raises(ValidationError):
        StoresConfig(key_prefix="a:b")  # the prefix is one segment of the key


def test_key_rule() -> None:
    client = open_redis(f"redis://{NOWHERE}", user="vault", prefix="prod", timeout_s=0.25)
    assert client.namespace == "prod:vault"
    assert client.key("wf", "alice", "<E#a>") == "prod:vault:{wf}:alice:<E#a>"
    assert open_redis(f"redis://{NOWHERE}", user="breaker", timeout_s=1).key("p/m") == (
        "gw:breaker:{p/m}"
    )


@pytest.fixture
def silent() -> Iterator[str]:
    """A TCP listener that accepts and never answers: a Redis that hangs."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("scheme", ["redis", "redis+cluster"])
async def test_a_silent_server_costs_the_bound_then_one_error(scheme: str, silent: str) -> None:
    client = open_redis(f"{scheme}://{silent}", user="breaker", timeout_s=0.05)
    try:
        for _ in range(3):  # each call pays the bound once, no retry inside
            started = time.perf_counter()
            with pytest.raises(StoreError, match="redis: "):
                await client.call(lambda r: r.get("k"))
            assert time.perf_counter() - started < 0.5
    finally:
        await client.aclose()


async def test_refused_connection_is_one_error() -> None:
    client = open_redis("redis://127.0.0.1:1/0", user="lim", timeout_s=0.25)
    with pytest.raises(StoreError, match="ConnectionError"):
        await client.call(lambda r: r.ping())
    await client.aclose()


async def test_script_error_reply_is_one_error() -> None:
    source = "return redis.error_reply('refused by script')"
    failing = Script(source, hashlib.sha1(source.encode()).hexdigest())
    client: RedisClient = open_redis(REDIS_URL, user="lim", timeout_s=2.0)
    try:
        with pytest.raises(StoreError, match="refused by script"):
            await client.script(failing, ["{gw:lim}:k"], [])
        ok = "return ARGV[1]"
        assert await client.script(Script(ok, hashlib.sha1(ok.encode()).hexdigest()), [], [7]) == (
            b"7"
        )
    finally:
        await client.aclose()
