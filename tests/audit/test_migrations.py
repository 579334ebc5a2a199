"""``gateway migrate`` on the real PostgreSQL: versions applied once under the advisory lock,
a database of the release before migrations recognized as version 1, both releases writing
and reading during a rolling upgrade, and ``/readyz`` refusing an incompatible schema."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from gateway.audit.chain import Chain, verify_rows
from gateway.audit.migrate import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SchemaState,
    incompatibility,
    migrate,
    read_state,
)
from gateway.audit.postgres import PostgresSink
from gateway.cli import main
from tests.audit import legacy
from tests.audit.conftest import PG_URL, drop_schema, record, start_gateway
from tests.fakes.upstream import FakeUpstream
from tests.support.server import write_yaml

CHAIN = Chain(b"m" * 32)


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"migr_{uuid.uuid4().hex[:12]}"
    yield name
    asyncio.run(drop_schema(name))
    asyncio.run(drop_schema(f"{name}_review"))


@pytest.fixture
async def db() -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(PG_URL)
    yield conn
    await conn.close()


def _cli(tmp_path: Path, schema: str, *args: str) -> int:
    config = write_yaml(
        tmp_path / "gateway.yaml",
        {"providers": {"demo": {"type": "mock"}}, "models": {},
         "stores": {"audit_url": PG_URL}, "audit": {"pg_schema": schema},
         # its own review store too: `migrate` brings both up, and the shared one may be
         # at another branch's version
         "review": {"pg_schema": f"{schema}_review"}},
    )  # fmt: skip
    return main(["--config", str(config), "migrate", *args])


async def _indexes(db: asyncpg.Connection, schema: str) -> set[str]:
    rows = await db.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = $1", schema)
    return {r[0] for r in rows}


def test_migrate_creates_then_does_nothing(
    tmp_path: Path, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(tmp_path, schema, "--check") == 1  # nothing there yet
    assert _cli(tmp_path, schema) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("applied")] == [
        f"applied {m.version:04d}_{m.name}" for m in MIGRATIONS
    ]
    assert _cli(tmp_path, schema) == 0
    assert "applied" not in capsys.readouterr().out
    assert _cli(tmp_path, schema, "--check") == 0


async def test_concurrent_migrators_apply_each_version_once(schema: str) -> None:
    conns = [await asyncpg.connect(PG_URL) for _ in range(4)]
    try:
        await legacy.start(conns[0], schema)  # the release before: version 1, unrecorded
        applied = await asyncio.gather(*(migrate(c, schema) for c in conns))
        assert sorted(len(a) for a in applied) == [0, 0, 0, SCHEMA_VERSION - 1]
        versions = await conns[0].fetch(f"SELECT version FROM {schema}.schema_migrations")
        assert sorted(v[0] for v in versions) == list(range(1, SCHEMA_VERSION + 1))
    finally:
        for c in conns:
            await c.close()


async def test_rolling_upgrade_from_the_release_before_migrations(
    db: asyncpg.Connection, schema: str
) -> None:
    await legacy.start(db, schema)
    await legacy.write(db, schema, CHAIN, [record(1), record(2)])
    sink = PostgresSink(PG_URL, schema, CHAIN)
    try:
        # The new release on the old schema: it does not touch it, and is not ready.
        assert await sink.readiness() == (
            f"audit schema at version 1, this release needs {SCHEMA_VERSION}: run `gateway migrate`"
        )
        assert await read_state(db, schema) == SchemaState(1, 1, legacy=True)

        assert [m.version for m in await migrate(db, schema)] == list(
            range(2, SCHEMA_VERSION + 1)
        )  # 0001 recorded, not run again: the records are still there
        assert f"{schema}_records_workflow_time" in await _indexes(db, schema)
        assert await sink.readiness() is None

        # Both releases at once: the old one restarts (its DDL) and writes, the new one too.
        await legacy.start(db, schema)
        await legacy.write(db, schema, CHAIN, [record(3)])
        await sink.write([record(4), record(5)])
        await legacy.write(db, schema, CHAIN, [record(6)])
        expected = [f"req{n:06d}" for n in range(1, 7)]
        assert await legacy.request_ids(db, schema) == expected
        assert [r.request_id async for r in sink.rows()] == expected
        report = await verify_rows(CHAIN, sink.rows(), await sink.checkpoint(), await sink.head())
        assert report.ok, report
        assert report.checked == 6
    finally:
        await sink.close()


async def test_a_newer_schema_is_served_only_if_it_says_so(
    db: asyncpg.Connection, schema: str
) -> None:
    await migrate(db, schema)
    future = SCHEMA_VERSION + 1
    sink = PostgresSink(PG_URL, schema, CHAIN)
    try:
        # An additive migration of the next release: this one keeps serving.
        await db.execute(
            f"INSERT INTO {schema}.schema_migrations VALUES ($1, 'next', 'x', $2)", future, 1
        )
        assert await sink.readiness() is None
        # One that removes what this release uses: not ready, and says which release is.
        await db.execute(
            f"INSERT INTO {schema}.schema_migrations VALUES ($1, 'later', 'y', $1)", future + 1
        )
        assert await sink.readiness() == (
            f"audit schema at version {future + 1} needs a release that knows version "
            f"{future + 1} or later; this one knows {SCHEMA_VERSION}"
        )
    finally:
        await sink.close()


def test_incompatibility_rules() -> None:
    assert incompatibility(SchemaState(2, 1), known=2) is None
    assert incompatibility(SchemaState(3, 2), known=2) is None
    assert incompatibility(SchemaState(3, 3), known=2) is not None
    assert incompatibility(SchemaState(1, 1), known=2) is not None


def test_readyz_says_why_until_migrated(
    upstream: FakeUpstream, tmp_path: Path, schema: str
) -> None:
    async def old_release() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await legacy.start(conn, schema)
        finally:
            await conn.close()

    asyncio.run(old_release())
    gw, server = start_gateway(
        tmp_path,
        upstream,
        audit={"pg_schema": schema},
        stores={"audit_url": PG_URL},
    )
    try:
        ready = httpx.get(f"{gw.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"].startswith("audit schema at version 1, this release")
        assert httpx.get(f"{gw.url}/healthz").status_code == 200  # alive all the same
        assert _cli(tmp_path, schema) == 0
        ready = httpx.get(f"{gw.url}/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
    finally:
        server.stop()
