"""Audit fixtures: a gateway whose records the tests read back from its SQLite file, and
one store fixture parametrized over SQLite and the real PostgreSQL (a schema per test)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from gateway.audit import AuditRecord, AuditStore
from gateway.audit.chain import Chain
from gateway.audit.postgres import PostgresSink
from gateway.audit.sqlite import SqliteSink
from tests.conftest import POLICIES, UPSTREAM_KEYS, Gateway, gateway_config
from tests.fakes.upstream import FakeUpstream
from tests.support.server import GatewayServer, new_key, write_yaml

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

AUDIT_POLICIES: dict[str, dict[str, object]] = {
    **POLICIES,
    "kept": {
        "workflow": "kept",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["gpt-test", "claude-test"]},
        "retention": {"audit_days": 7, "upstream_store": False},
    },
}


@dataclass
class AuditedGateway(Gateway):
    db: Path = Path()
    admin_key: str = ""

    def records(self, request_id: str, wait: float = 0.0) -> list[AuditRecord]:
        """Every record of ``request_id`` (waiting up to ``wait`` s for the first)."""
        deadline = time.monotonic() + wait
        while True:
            with sqlite3.connect(self.db) as db:
                rows = db.execute(
                    "SELECT body FROM audit_records WHERE request_id = ?", (request_id,)
                ).fetchall()
            if rows or time.monotonic() >= deadline:
                return [AuditRecord.from_json(r[0]) for r in rows]
            time.sleep(0.02)

    def one(self, request_id: str, wait: float = 0.0) -> AuditRecord:
        found = self.records(request_id, wait)
        assert len(found) == 1, f"{len(found)} records for {request_id}"
        return found[0]


def start_gateway(
    root: Path,
    upstream: FakeUpstream,
    audit: dict[str, object] | None = None,
    stores: dict[str, object] | None = None,
    policies: dict[str, dict[str, object]] | None = None,
    extra: dict[str, object] | None = None,
) -> tuple[AuditedGateway, GatewayServer]:
    config = {**gateway_config(upstream), "audit": {"purge_interval_s": 0, **(audit or {})}}
    if stores:
        config["stores"] = stores
    config.update(extra or {})
    path = write_yaml(root / "gateway.yaml", config)
    for name, policy in (policies or AUDIT_POLICIES).items():
        write_yaml(root / "policies" / f"{name}.yaml", policy)
    analyst = new_key(root / "keys.yaml", "alice", ["analyst"])
    ops = new_key(root / "keys.yaml", "olga", ["ops"])
    admin = new_key(root / "keys.yaml", "root", ["admin"])
    server = GatewayServer(path, UPSTREAM_KEYS).start()
    gw = AuditedGateway(server.url, analyst, ops, root, db=root / "audit.db", admin_key=admin)
    return gw, server


@pytest.fixture(scope="module")
def audited(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuditedGateway]:
    gw, server = start_gateway(tmp_path_factory.mktemp("audited"), upstream)
    try:
        yield gw
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuditStore]:
    """The same tests on both sinks; PostgreSQL gets a schema of its own, dropped after."""
    chain = Chain(b"k" * 32)
    if request.param == "sqlite":
        sink: AuditStore = SqliteSink(tmp_path / "audit.db", chain)
        yield sink
        await sink.close()
        return
    schema = f"audit_test_{uuid.uuid4().hex[:12]}"
    sink = PostgresSink(PG_URL, schema, chain)
    try:
        yield sink
    finally:
        await sink.close()
        await drop_schema(schema)


async def drop_schema(schema: str) -> None:
    """Remove a test's own PostgreSQL schema and everything in it."""
    db = await asyncpg.connect(PG_URL)
    try:
        await db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await db.close()


def record(n: int, **changes: object) -> AuditRecord:
    """A plausible record; ``n`` makes its request id and time distinct."""
    fields: dict[str, object] = dict(
        request_id=f"req{n:06d}", time=1_700_000_000.0 + n, endpoint="chat", workflow="chat_app",
        policy_version="sha256:abc", mode="enforce", subject="alice", roles=["analyst"],
        team=None, key_id="k1", auth_method="key", model_requested="gpt-test",
        model_used="gpt-test", fallback_used=False, decision="allow", reasons=[], status=200,
        streamed=False, stream_end=None, upstream_status=200, attempts=1, retries=0,
        latency_ms=1.0, upstream_ms=0.5, tokens_in=3, tokens_out=4, reserved_usd=None,
        actual_usd=None, upstream_store=None,
    )  # fmt: skip
    fields.update(changes)
    return AuditRecord(**fields)  # type: ignore[arg-type]
