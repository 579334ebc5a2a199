"""One way to reach Redis: ``open_redis`` turns a URL into the client one user of the shared
store (limits, vault, breaker) talks through, with its own time bound and key namespace, and
one error type for every way Redis can fail.

URLs, as ``limits``' ``storage_from_string`` reads them::

    redis://[[user]:[password]@]host[:port][/db]    plain TCP
    rediss://...                                    TLS
    unix:///path/to/redis.sock[?db=0]               a local socket
    redis+cluster://host:port                       Redis Cluster (any node; the rest are found)
    rediss+cluster://host:port                      Redis Cluster over TLS

A dependency that stops answering costs a request at most its bound, never seconds: the
connect and socket timeouts are the bound, redis-py's own retries are off (its defaults: 5 s
socket timeouts and up to ten retries on connection errors and timeouts), and every call as a
whole (connecting, the handshake, a script's EVALSHA-then-EVAL) runs under ``asyncio.timeout``
of that bound, as socket timeouts apply per read.

Keys: one deployment prefix (``stores.key_prefix``) and each user under its own name, the
namespace ``<prefix>:<user>``; a key is ``<namespace>:{<tag>}:<rest>``, the hash tag naming
the Redis Cluster slot its keys share. The limits tag a subject's counters by workflow, kind
and subject and a workflow's by workflow, and reserve slot by slot when one request's rules
span several (gateway/limits/keys.py, redis.py; docs/operations.md).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

if TYPE_CHECKING:  # redis-py loads with the first client (_failures says why)
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["SCHEMES", "Client", "RedisClient", "Script", "StoreError", "namespace", "open_redis"]

T = TypeVar("T")
Client: TypeAlias = "Redis | RedisCluster"
EncodedArg = bytes | str | int | float

# scheme -> (redis-py's scheme, Cluster or not)
SCHEMES: dict[str, tuple[str, bool]] = {
    "redis": ("redis", False),
    "rediss": ("rediss", False),
    "unix": ("unix", False),
    "redis+cluster": ("redis", True),
    "rediss+cluster": ("rediss", True),
}


def namespace(prefix: str, user: str) -> str:
    """Where one user's keys live: ``namespace("gw", "vault") == "gw:vault"``."""
    return f"{prefix}:{user}"


class StoreError(Exception):
    """A shared store failed or did not answer within its bound.

    Raised for every redis-py error (connection, timeout, a script's error reply, Cluster
    errors), mapped once, in ``RedisClient.call``; the message names the kind, never a value.
    """


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua file, called by hash (EVALSHA) and sent whole (EVAL) when the server forgot it
    (a restart, SCRIPT FLUSH, a failover)."""

    source: str
    sha: str

    @classmethod
    def load(cls, package: str, name: str) -> Script:
        source = resources.files(package).joinpath("lua", name).read_text()
        return cls(source, hashlib.sha1(source.encode()).hexdigest())


@functools.cache
def _failures() -> tuple[type[BaseException], ...]:
    """What ``RedisClient.call`` maps to StoreError besides its bound. redis-py (about a
    tenth of a second of start-up) is imported with the first client, so a deployment
    without ``stores.redis_url`` never loads it (tests/cli/test_startup_clients.py); this is
    looked up only when a call fails."""
    from redis.exceptions import RedisClusterException, RedisError

    return (RedisError, RedisClusterException, OSError)


@functools.cache
def _no_script() -> type[BaseException]:
    from redis.exceptions import NoScriptError

    return NoScriptError


def _client(url: str, timeout_s: float, decode_responses: bool) -> Client:
    scheme, sep, rest = url.partition("://")
    known = SCHEMES.get(scheme.lower()) if sep else None
    if known is None:
        raise ValueError(f"a Redis URL starts with {', '.join(s + '://' for s in SCHEMES)}")
    real, cluster = known
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    if cluster:
        return RedisCluster.from_url(
            f"{real}://{rest}",
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=decode_responses,
        )
    return Redis.from_url(
        f"{real}://{rest}",
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        decode_responses=decode_responses,
    )


class RedisClient:
    """One user's client of the shared Redis: its own pool and bound, its key namespace.

    Each user gets its own, because the bound differs per user (the breaker gives up sooner
    than limits and vault) and redis-py sets socket timeouts per pool; a pool costs one idle
    connection per user and process.

    >>> client = open_redis("redis+cluster://10.0.0.1:7000", user="vault", timeout_s=0.25)
    >>> client.namespace, client.cluster
    ('gw:vault', True)
    """

    def __init__(self, client: Client, namespace: str, timeout_s: float) -> None:
        self._client = client
        self.namespace = namespace
        self.timeout_s = timeout_s
        # A Cluster client learns the slot map on first use. Left to redis-py, concurrent
        # first calls race its set-up and most fail ("Connection closed by server"); so the
        # first call sets it up alone, the others wait for it.
        from redis.asyncio.cluster import RedisCluster

        self._cluster = isinstance(client, RedisCluster)
        self._setup: asyncio.Lock | None = asyncio.Lock() if self._cluster else None

    @property
    def cluster(self) -> bool:
        return self._cluster

    @property
    def raw(self) -> Client:
        """The redis-py client, for benchmarks; calls on the request path go through ``call``."""
        return self._client

    def key(self, tag: str, *rest: str) -> str:
        """``<namespace>:{<tag>}:<rest>``: keys with one tag share one Cluster slot."""
        return ":".join((f"{self.namespace}:{{{tag}}}", *rest))

    async def call(self, op: Callable[[Client], Awaitable[T]], *, bounded: bool = True) -> T:
        """``op(client)``, within ``timeout_s`` in all unless not ``bounded`` (an admin scan:
        then each read still has the socket timeout); every failure becomes StoreError."""
        try:
            if not bounded:
                await self._set_up()
                return await op(self._client)
            async with asyncio.timeout(self.timeout_s):
                await self._set_up()
                return await op(self._client)
        except TimeoutError as exc:  # asyncio's bound (builtin TimeoutError, an OSError)
            raise StoreError(f"redis: no answer within {self.timeout_s * 1000:.0f} ms") from exc
        except _failures() as exc:
            raise StoreError(f"redis: {type(exc).__name__}: {exc}") from exc
        except (AttributeError, RuntimeError) as exc:
            # redis-py's cluster client, after a connection error or timeout on a node,
            # disconnects that node's idle connections while other calls may be taking them
            # up; those calls then fail on a closed transport with AttributeError (writer
            # gone) or RuntimeError (uvloop: handler closed) instead of ConnectionError.
            # Seen under load and in every failover (tests/stores/test_cluster.py).
            if not self.cluster:
                raise
            raise StoreError(f"redis: cluster connection closed: {exc}") from exc

    async def _set_up(self) -> None:
        if self._setup is None:
            return
        async with self._setup:
            if self._setup is not None:
                await self._client.initialize()  # only a Cluster client has a set-up lock
                self._setup = None

    async def script(self, script: Script, keys: Sequence[str], args: Sequence[EncodedArg]) -> Any:
        """Run ``script`` on ``keys`` (one slot) with ``args``, as one bounded call."""

        async def run(client: Client) -> Any:
            try:
                return await client.evalsha(script.sha, len(keys), *keys, *args)
            except _no_script():
                return await client.eval(script.source, len(keys), *keys, *args)

        return await self.call(run)

    async def aclose(self) -> None:
        await self._client.aclose()


def open_redis(
    url: str,
    *,
    user: str,
    timeout_s: float,
    prefix: str = "gw",
    decode_responses: bool = False,
) -> RedisClient:
    """A client of the Redis at ``url`` for ``user`` (``lim``, ``vault``, ``breaker``), whose
    calls each cost at most ``timeout_s``. Nothing is contacted until the first call."""
    return RedisClient(
        _client(url, timeout_s, decode_responses), namespace(prefix, user), timeout_s
    )
