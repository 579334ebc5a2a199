"""Versioned schema of the review store, on SQLite and on PostgreSQL (``gateway migrate``).

The migrations are the SQL files in gateway/review/migrations/, ``NNNN_name.sql``, written
once for both databases with ``{p}`` for the table prefix (``review_`` in SQLite, the schema
``review.pg_schema`` in PostgreSQL) and ``{i}`` for index names; applied in order, each in one
transaction with its row in ``{p}schema_migrations``.

- SQLite applies what is pending when the file is opened (as the audit's SQLite file does),
  under ``BEGIN IMMEDIATE``, so two workers opening it at once apply each migration once.
- PostgreSQL, under an advisory lock on the schema: a store with no migration recorded (new,
  or made before migrations) is brought up to date on first use; one that has some but not
  all is upgraded only by ``gateway migrate``, run before a rolling upgrade (the audit
  schema's rule: gateway/audit/migrate.py).
- A store made before migrations is adopted: 0001 is the statements that release ran, all
  ``IF NOT EXISTS``, so it only adds what was missing and is recorded.
- An applied migration whose file changed since is refused (a release mix-up).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from contextlib import closing
from typing import TYPE_CHECKING, Any

from gateway.stores.migrations import Migration, MigrationError, advisory_lock, load_migrations

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

__all__ = [
    "MIGRATIONS", "VERSION", "Migration", "MigrationError", "migrate_pg", "migrate_sqlite",
    "migrate_store",
]  # fmt: skip


def _statements(m: Migration, prefix: str) -> list[str]:
    """``m`` with ``{p}``, the table prefix, and ``{i}``, the index names' prefix."""
    return m.statements({"{p}": prefix, "{i}": prefix.replace(".", "_")})


MIGRATIONS = load_migrations("gateway.review.migrations")
VERSION = MIGRATIONS[-1].version

_TABLE = (
    "CREATE TABLE IF NOT EXISTS {p}schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)


def _pending(applied: dict[int, str]) -> list[Migration]:
    for m in MIGRATIONS:
        if m.version in applied and applied[m.version] != m.checksum:
            raise MigrationError(
                f"review migration {m.version:04d}_{m.name} was applied from a different file "
                f"(checksum {applied[m.version]}, this release has {m.checksum})"
            )
    newest = max(applied, default=0)
    if newest > VERSION:
        raise MigrationError(
            f"review store at version {newest}: this release knows {VERSION}, upgrade it"
        )
    return [m for m in MIGRATIONS if m.version not in applied]


def migrate_sqlite(conn: sqlite3.Connection, prefix: str) -> list[Migration]:
    """Apply what is pending on an open connection (autocommit mode); the migrations applied."""
    conn.execute("BEGIN IMMEDIATE")  # the write lock: one opener migrates, the others wait
    try:
        conn.execute(_TABLE.replace("{p}", prefix))
        applied = dict(conn.execute(f"SELECT version, checksum FROM {prefix}schema_migrations"))
        pending = _pending(applied)
        for m in pending:
            for statement in _statements(m, prefix):
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {prefix}schema_migrations (version, name, checksum, applied_at) "
                "VALUES (?, ?, ?, (julianday('now') - 2440587.5) * 86400.0)",
                [m.version, m.name, m.checksum],
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return pending


async def migrate_pg(db: Any, schema: str, *, upgrade: bool) -> list[Migration]:
    """Bring ``schema`` up to date on an asyncpg connection; without ``upgrade`` (a gateway's
    first use) only a store with nothing recorded. The migrations applied."""
    async with advisory_lock(db, f"gateway.review:{schema}"):
        await db.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        prefix = f"{schema}."
        await db.execute(_TABLE.replace("{p}", prefix))
        rows = await db.fetch(f"SELECT version, checksum FROM {prefix}schema_migrations")
        applied = {r[0]: r[1] for r in rows}
        pending = _pending(applied)
        if pending and applied and not upgrade:
            raise MigrationError(
                f"review store {schema} at version {max(applied)}, this release needs "
                f"{VERSION}: run `gateway migrate`"
            )
        for m in pending:
            async with db.transaction():
                for statement in _statements(m, prefix):
                    await db.execute(statement)
                await db.execute(
                    f"INSERT INTO {prefix}schema_migrations (version, name, checksum, "
                    "applied_at) VALUES ($1, $2, $3, extract(epoch from now()))",
                    m.version, m.name, m.checksum,
                )  # fmt: skip
        return pending


def migrate_store(config: GatewayConfig) -> int:
    """``gateway migrate`` for the review store: its pending migrations applied, printed;
    1 if it cannot be brought up to date."""
    import asyncpg  # here, not at start-up: a SQLite deployment never loads it

    review = config.review
    try:
        if config.stores.audit_url:
            applied = asyncio.run(_migrate_pg(config.stores.audit_url, review.pg_schema))
            where = f"review store {review.pg_schema}"
        else:
            path = config.path(review.sqlite_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(path, isolation_level=None)) as conn:
                applied = migrate_sqlite(conn, "review_")
            where = f"review store {path}"
    except (MigrationError, sqlite3.Error, OSError, TimeoutError, asyncpg.PostgresError) as exc:
        print(f"review store migration failed: {exc}", file=sys.stderr)
        return 1
    for m in applied:
        print(f"review store: applied {m.version:04d}_{m.name}")
    print(f"{where}: at version {VERSION}")
    return 0


async def _migrate_pg(url: str, schema_name: str) -> list[Migration]:
    import asyncpg

    db = await asyncpg.connect(url, timeout=10)
    try:
        return await migrate_pg(db, schema_name, upgrade=True)
    finally:
        await db.close()
