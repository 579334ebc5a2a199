"""A gateway with tight bounds (gateway.yaml ``server`` and ``upstream``) in front of the shared
fake upstream, and the raw-socket and audit helpers the hostile-client tests need."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.audit import AuditRecord
from tests.conftest import UPSTREAM_KEYS, gateway_config
from tests.fakes.upstream import FakeUpstream
from tests.support.server import GatewayServer, new_key, write_yaml

SERVER = {
    "max_header_bytes": 16 * 1024,
    "head_timeout_s": 1.0,
    "body_timeout_s": 1.0,
    "max_messages": 100,
    "max_parts": 200,
    "max_tools": 16,
    "max_string_bytes": 256 * 1024,
}
UPSTREAM = {
    "max_answer_bytes": 1024 * 1024,
    "max_event_bytes": 64 * 1024,
    "stream_timeout_s": 2.0,
    "idle_timeout_s": 1.0,
}


def _policy(name: str, **extra: object) -> dict[str, object]:
    return {
        "workflow": name,
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["gpt-test", "claude-test", "mock-model"]},
        "upstream": {"timeout_s": 5, "retries": 0},
        **extra,
    }


POLICIES = {
    "plain": _policy("plain"),
    "guarded": _policy("guarded", data={"entities": {"EMAIL_ADDRESS": "mask"}}),
}


@dataclass
class Bounded:
    url: str
    host: str
    port: int
    key: str
    root: Path

    def record(self, request_id: str) -> AuditRecord:
        """The audit record of one request (written soon after its response)."""
        deadline = time.monotonic() + 5
        while True:
            with sqlite3.connect(self.root / "audit.db") as db:
                rows = db.execute(
                    "SELECT body FROM audit_records WHERE request_id = ?", (request_id,)
                ).fetchall()
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(rows) == 1
        return AuditRecord.from_json(rows[0][0])

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=10)


@pytest.fixture(scope="session")
def bounded(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bounded]:
    root = tmp_path_factory.mktemp("bounded")
    config = {
        **gateway_config(upstream),
        "max_body_bytes": 8 * 1024 * 1024,
        "server": SERVER,
        "upstream": UPSTREAM,
    }
    path = write_yaml(root / "gateway.yaml", config)
    for name, policy in POLICIES.items():
        write_yaml(root / "policies" / f"{name}.yaml", policy)
    key = new_key(root / "keys.yaml", "alice", ["analyst"])
    server = GatewayServer(path, UPSTREAM_KEYS).start()
    host, port = server.url.removeprefix("http://").split(":")
    try:
        yield Bounded(server.url, host, int(port), key, root)
    finally:
        server.stop()


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def gateway_process(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``gateway serve`` in a process of its own (its memory and CPU are read from /proc),
    answering ``/healthz`` on ``port``; stopped on exit, also when it does not start in time."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--log-level", "error"],
        env={**os.environ, **UPSTREAM_KEYS},
        cwd=config.parent,
    )
    deadline = time.monotonic() + 30
    try:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            assert process.poll() is None and time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
