"""The review store's schema is made by its migrations on SQLite and on PostgreSQL: a new store
is brought up to date on first use, a store made by the release before migrations (its
tables created ad hoc) is adopted with its items, ``gateway migrate`` applies them, and an
applied migration whose file changed stops the store (fail closed)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from gateway.cli import main
from gateway.review.db import PostgresDb, SqliteDb, StoreUnavailable
from gateway.review.migrate import MIGRATIONS, VERSION, migrate_pg
from gateway.review.store import ReviewStore
from tests.audit.conftest import PG_URL, drop_schema
from tests.support.server import write_yaml

# What the release before migrations ran on first use (gateway/review/store.py then): the
# rollup tables came later, with the first overview.
LEGACY = [
    """CREATE TABLE IF NOT EXISTS {p}items (
        id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL,
        sla_at DOUBLE PRECISION NOT NULL, workflow TEXT NOT NULL, data TEXT NOT NULL,
        state TEXT NOT NULL, claimed_by TEXT, claimed_until DOUBLE PRECISION NOT NULL,
        decided_by TEXT, decided_at DOUBLE PRECISION, verdict TEXT, note TEXT,
        result TEXT, result_status INTEGER)""",
    "CREATE INDEX IF NOT EXISTS {i}items_queue ON {p}items (state, created, id)",
    """CREATE TABLE IF NOT EXISTS {p}deliveries (
        item TEXT NOT NULL, attempt INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL,
        status INTEGER, error TEXT, PRIMARY KEY (item, attempt))""",
    """CREATE TABLE IF NOT EXISTS {p}sessions (
        id TEXT PRIMARY KEY, subject TEXT NOT NULL, roles TEXT NOT NULL,
        csrf TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL)""",
]
ITEM = (
    "INSERT INTO {p}items (id, created, sla_at, workflow, data, state, claimed_until) VALUES "
    "('rv_old', 1700000000.0, 1700000060.0, 'held', '{data}', 'pending', 0)"
)
DATA = (
    '{"workflow": "held", "request_id": "r1", "kind": "request", "trigger": "blocked", '
    '"reason": "boundary.blocked_entity", "subject": "alice", "roles": ["analyst"], '
    '"team": null, "api": "openai_chat", "model": "gpt-test", "policy_version": "sha256:x", '
    '"assign_to": [], "webhook": null, "webhook_secret_env": null, "message": null, '
    '"request": {"messages": []}, "answer": null, "shown": null}'
)


class Backend:
    """One database for a test: a SQLite file or a PostgreSQL schema of its own."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.path = tmp_path / "reviews.db"
        self.schema = f"review_migr_{uuid.uuid4().hex[:10]}"
        self.prefix = "review_" if kind == "sqlite" else f"{self.schema}."

    def store(self) -> ReviewStore:
        if self.kind == "sqlite":
            return ReviewStore(SqliteDb(self.path))
        return ReviewStore(PostgresDb(PG_URL, self.schema))

    async def run(self, *statements: str) -> list[tuple[object, ...]]:
        p, i = self.prefix, self.prefix.replace(".", "_")
        sql = [s.replace("{p}", p).replace("{i}", i).replace("{data}", DATA) for s in statements]
        if self.kind == "sqlite":
            with sqlite3.connect(self.path) as db:
                rows: list[tuple[object, ...]] = []
                for s in sql:
                    rows = db.execute(s).fetchall()
                return rows
        db = await asyncpg.connect(PG_URL)
        try:
            await db.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            got: list[tuple[object, ...]] = []
            for s in sql:
                got = [tuple(r) for r in await db.fetch(s)]
            return got
        finally:
            await db.close()

    async def versions(self) -> list[object]:
        rows = await self.run("SELECT version FROM {p}schema_migrations ORDER BY version")
        return [r[0] for r in rows]


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    b = Backend(request.param, tmp_path)
    yield b
    if b.kind == "postgres":
        await drop_schema(b.schema)


async def test_a_new_store_is_made_by_its_migrations(backend: Backend) -> None:
    store = backend.store()
    try:
        assert await store.list() == []
    finally:
        await store.close()
    assert await backend.versions() == list(range(1, VERSION + 1))
    for table in ("items", "deliveries", "sessions", "rollups", "rollup_done"):
        assert await backend.run(f"SELECT COUNT(*) FROM {{p}}{table}") == [(0,)]
    again = backend.store()  # opened again: nothing is applied twice
    try:
        assert await again.list() == []
    finally:
        await again.close()
    assert await backend.versions() == list(range(1, VERSION + 1))


async def test_a_store_made_before_migrations_is_adopted_with_its_items(
    backend: Backend,
) -> None:
    await backend.run(*LEGACY, ITEM)
    store = backend.store()
    try:
        old = await store.get("rv_old")
        assert old is not None
        assert (old.workflow, old.subject, old.state) == ("held", "alice", "pending")
        assert [i.id for i in await store.list()] == ["rv_old"]
    finally:
        await store.close()
    assert await backend.versions() == list(range(1, VERSION + 1))
    assert await backend.run("SELECT COUNT(*) FROM {p}rollups") == [(0,)]  # made by 0001


async def test_an_applied_migration_whose_file_changed_stops_the_store(backend: Backend) -> None:
    store = backend.store()
    await store.list()
    await store.close()
    await backend.run("UPDATE {p}schema_migrations SET checksum = 'edited' WHERE version = 1")
    again = backend.store()
    try:
        with pytest.raises(StoreUnavailable, match="applied from a different file"):
            await again.list()
    finally:
        await again.close()


def test_gateway_migrate_makes_the_review_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_yaml(
        tmp_path / "gateway.yaml",
        {"providers": {"demo": {"type": "mock"}}, "models": {},
         "review": {"sqlite_path": "state/reviews.db"}},
    )  # fmt: skip
    assert main(["--config", str(config), "migrate"]) == 0
    said = capsys.readouterr().out
    assert f"review store: applied 0001_{MIGRATIONS[0].name}" in said
    assert f"at version {VERSION}" in said
    with sqlite3.connect(tmp_path / "state" / "reviews.db") as db:
        rows = db.execute("SELECT version FROM review_schema_migrations").fetchall()
    assert [r[0] for r in rows] == list(range(1, VERSION + 1))
    assert main(["--config", str(config), "migrate"]) == 0  # nothing pending: still fine
    assert "review store: applied" not in capsys.readouterr().out


async def test_gateway_migrate_makes_the_review_schema_on_postgres(tmp_path: Path) -> None:
    schema = f"review_cli_{uuid.uuid4().hex[:10]}"
    audit = f"audit_cli_{uuid.uuid4().hex[:10]}"
    config = write_yaml(
        tmp_path / "gateway.yaml",
        {"providers": {"demo": {"type": "mock"}}, "models": {}, "stores": {"audit_url": PG_URL},
         "audit": {"pg_schema": audit}, "review": {"pg_schema": schema}},
    )  # fmt: skip
    try:
        code = await asyncio.to_thread(main, ["--config", str(config), "migrate"])
        assert code == 0
        db = await asyncpg.connect(PG_URL)
        try:
            rows = await db.fetch(f"SELECT version FROM {schema}.schema_migrations")
        finally:
            await db.close()
        assert [r[0] for r in rows] == list(range(1, VERSION + 1))
    finally:
        await drop_schema(schema)
        await drop_schema(audit)


async def test_decisions_left_undelivered_by_the_release_before_are_due(
    backend: Backend,
) -> None:
    """0002 marks due the decisions with a webhook and no successful attempt (a restart cut
    them off before deliveries were resumed); those delivered, or without a webhook, are not."""
    store = backend.store()
    await store.list()  # made at 0001 only: the 0002 file is set aside while it is
    await store.close()
    await backend.run("DELETE FROM {p}schema_migrations WHERE version > 1")
    if VERSION > 1:
        await backend.run(
            "DROP INDEX IF EXISTS {i}items_webhook",
            "ALTER TABLE {p}items DROP COLUMN webhook_lease",
        )
    hooked = DATA.replace('"webhook": null', '"webhook":"http://127.0.0.1:9/h"')
    for id_, data, state in [
        ("rv_cut", hooked, "rejected"), ("rv_sent", hooked, "approved"),
        ("rv_nohook", DATA, "approved"), ("rv_waiting", hooked, "pending"),
    ]:  # fmt: skip
        await backend.run(
            "INSERT INTO {p}items (id, created, sla_at, workflow, data, state, claimed_until) "
            f"VALUES ('{id_}', 1.0, 2.0, 'held', '{data}', '{state}', 0)"
        )
    await backend.run(
        "INSERT INTO {p}deliveries (item, attempt, at, status, error) VALUES "
        "('rv_cut', 1, 3.0, 500, NULL), ('rv_sent', 1, 3.0, 500, NULL), "
        "('rv_sent', 2, 4.0, 204, NULL)"
    )
    if backend.kind == "postgres":  # a store at an older version: `gateway migrate` first
        db = await asyncpg.connect(PG_URL)
        try:
            await migrate_pg(db, backend.schema, upgrade=True)
        finally:
            await db.close()
    again = backend.store()
    try:
        assert await again.due_deliveries() == [("rv_cut", 0.0)]
    finally:
        await again.close()
    assert await backend.versions() == list(range(1, VERSION + 1))
