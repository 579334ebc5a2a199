"""A private Redis Cluster on free ports: three primaries with a replica each, six
``redis-server --cluster-enabled yes`` in a temp dir, joined by ``redis-cli --cluster
create``. A primary can be killed (SIGKILL) and the cluster waited on until its replica took
over; the killed node is then started again and rejoins as a replica, so the cluster is whole
for the next test. The shared Redis on 6379 is never touched.

Node timeout 1 s (the default is 15 s): a failover takes about 2 s here instead of 16.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

NODE_TIMEOUT_MS = 1000


def _free_ports(n: int) -> list[int]:
    """``n`` ports free now whose cluster bus ports (+10000) are free too."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        try:
            with socket.socket() as bus:
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        ports.append(port)
    return ports


@dataclass
class Node:
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly", "no",
             "--repl-diskless-sync-delay", "0",
             "--dir", str(self.dir), "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _until(lambda: self._pings(), 10, f"node {self.port} did not start")

    def _pings(self) -> bool:
        try:
            with contextlib.closing(self.client()) as c:
                return bool(c.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def info(self) -> dict[str, object]:
        with contextlib.closing(self.client()) as c:
            return c.info("replication")  # type: ignore[no-any-return]


def _until(check: object, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(message)
        time.sleep(0.05)


class PrivateCluster:
    """Six nodes, three primaries with a replica each; ``url`` is a ``redis+cluster://`` URL
    naming one node (the client finds the rest)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="redis-cluster-"))
        self.nodes = []
        for port in _free_ports(6):
            folder = self.root / str(port)
            folder.mkdir()
            self.nodes.append(Node(port, folder))
        self.url = f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            ["redis-cli", "--cluster", "create",
             *(f"127.0.0.1:{n.port}" for n in self.nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30) -> None:
        """Until every live node says the cluster is ok, with three primaries serving all
        16384 slots and each primary's replica in sync."""

        def healthy() -> bool:
            for node in self.nodes:
                if node.proc is None:
                    continue
                with contextlib.closing(node.client()) as c:
                    info = c.execute_command("CLUSTER", "INFO").decode()
                    if "cluster_state:ok" not in info or "cluster_slots_ok:16384" not in info:
                        return False
            primaries = self.primaries()
            return len(primaries) == 3 and all(_replica_online(p) for p in primaries)

        _until(healthy, timeout, "the cluster did not become healthy")

    def primaries(self) -> list[Node]:
        return [n for n in self.nodes if n.proc is not None and n.info()["role"] == "master"]

    def primary_of(self, key: str) -> Node:
        """The node serving ``key``'s slot now."""
        with contextlib.closing(self.primaries()[0].client()) as c:
            slot = c.execute_command("CLUSTER", "KEYSLOT", key)
            for lo, hi, owner, *_ in c.execute_command("CLUSTER", "SLOTS"):
                if lo <= slot <= hi:
                    return self._by_port(int(owner[1]))
        raise RuntimeError(f"no primary serves {key}")

    def prefix_on_one_primary(self, stem: str, workflows: Sequence[str]) -> str:
        """A fresh key prefix under which these workflows' limits (hash tag
        ``{PREFIX:lim:WORKFLOW}``, one slot each) are served by one primary, so a test that
        kills it puts all of them through the failover."""
        while True:  # one try in three for two workflows on three primaries
            prefix = f"{stem}-{uuid.uuid4().hex[:10]}"
            owners = {self.primary_of(f"{{{prefix}:lim:{w}}}").port for w in workflows}
            if len(owners) == 1:
                return prefix

    def _by_port(self, port: int) -> Node:
        return next(n for n in self.nodes if n.port == port)

    def fail_over(self, primary: Node, timeout: float = 30) -> float:
        """Kill ``primary`` (SIGKILL), wait until its replica serves its slots, start it again
        as a replica; return how long the slots had no primary (seconds)."""
        replica_port = int(primary.info()["slave0"]["port"])  # type: ignore[index]
        replica = self._by_port(replica_port)
        started = time.monotonic()
        primary.kill()
        _until(lambda: replica.info()["role"] == "master", timeout, "no failover")
        window = time.monotonic() - started
        primary.start()  # rejoins from nodes.conf, as a replica of the new primary
        self.wait_healthy(timeout)
        return window

    def destroy(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _replica_online(primary: Node) -> bool:
    replica = primary.info().get("slave0")
    return isinstance(replica, dict) and replica.get("state") == "online"


_SHARED: list[PrivateCluster] = []


def shared_cluster() -> PrivateCluster:
    """The one cluster of this test process, started by its first user (tests/stores and
    tests/limits both ask for it) and destroyed when the process exits."""
    if not _SHARED:
        cluster = PrivateCluster()
        atexit.register(cluster.destroy)
        cluster.start()
        _SHARED.append(cluster)
    return _SHARED[0]
