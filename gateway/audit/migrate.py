"""Versioned schema migrations of the PostgreSQL audit store (``gateway migrate``).

The migrations are the SQL files in gateway/audit/migrations/, ``NNNN_name.sql``, applied in
order and recorded in ``{schema}.schema_migrations``. A small runner over asyncpg, chosen
over Alembic or yoyo (which bring SQLAlchemy or a second, synchronous driver) because the
whole job is a dozen statements under one advisory lock in the driver the sink already uses.

- A PostgreSQL advisory lock on the schema's name serializes every migrator and every first start,
  so concurrent starts (a Job and pods, several pods) apply each migration once.
- Each file says ``-- compatible-from: N``: the oldest release (by the newest migration it
  ships) whose statements still work on the schema once this migration is applied. Additive
  migrations keep the previous release's number, so a rolling upgrade can run both releases
  at once; a migration that removes what an older release uses raises it.
- ``-- transaction: none`` runs the file statement by statement outside a transaction
  (``CREATE INDEX CONCURRENTLY``); the others run in one transaction with their record.
- An empty schema is created whole in one transaction (``CONCURRENTLY`` dropped: there is
  nothing to keep writing to); the sink does that on its first start, as it always has.
- A schema made by the first release (tables, no ``schema_migrations``) is recorded as
  version 1 without running 0001 again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.stores.migrations import Migration, MigrationError, advisory_lock, load_migrations

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "MigrationError",
    "SchemaState",
    "incompatibility",
    "migrate",
    "read_state",
]


def _load() -> tuple[Migration, ...]:
    found = load_migrations("gateway.audit.migrations")
    for m in found:
        if m.compatible_from is None:
            raise MigrationError(f"{m.version:04d}_{m.name}.sql: no '-- compatible-from: N' line")
    return found


def _statements(m: Migration, schema: str, *, fresh: bool = False) -> list[str]:
    """``m`` for ``schema`` (a validated identifier, see AuditConfig); ``fresh``: an empty
    schema, where ``CONCURRENTLY`` has nothing to keep writing to."""
    return m.statements({"{schema}": schema, " CONCURRENTLY": "" if fresh else " CONCURRENTLY"})


MIGRATIONS = _load()
SCHEMA_VERSION = MIGRATIONS[-1].version  # what this release writes and needs


@dataclass(frozen=True, slots=True)
class SchemaState:
    """``version`` 0: nothing there yet; ``legacy``: tables of the first release, unrecorded."""

    version: int
    compatible_from: int
    legacy: bool = False


async def read_state(db: Any, schema: str) -> SchemaState:
    """The schema's version, read on an asyncpg connection."""
    if await db.fetchval("SELECT to_regclass($1)", f"{schema}.schema_migrations") is None:
        legacy = await db.fetchval("SELECT to_regclass($1)", f"{schema}.records") is not None
        return SchemaState(1, 1, legacy=True) if legacy else SchemaState(0, 0)
    row = await db.fetchrow(
        f"SELECT COALESCE(MAX(version), 0), COALESCE(MAX(compatible_from), 0) "
        f"FROM {schema}.schema_migrations"
    )
    return SchemaState(row[0], row[1])


def incompatibility(state: SchemaState, known: int = SCHEMA_VERSION) -> str | None:
    """Why a release that knows migrations up to ``known`` must not serve on this schema."""
    if state.version < known:
        return (
            f"audit schema at version {state.version}, this release needs {known}: "
            "run `gateway migrate`"
        )
    if state.compatible_from > known:
        return (
            f"audit schema at version {state.version} needs a release that knows version "
            f"{state.compatible_from} or later; this one knows {known}"
        )
    return None


async def migrate(db: Any, schema: str, *, fresh_only: bool = False) -> list[Migration]:
    """Bring ``schema`` to ``SCHEMA_VERSION`` under the advisory lock; the migrations applied.

    ``fresh_only``: create an empty schema, but leave an existing one as it is (the sink's
    start: upgrading is the operator's ``gateway migrate``).
    """
    async with advisory_lock(db, f"gateway.audit:{schema}"):
        await db.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        state = await read_state(db, schema)
        if state.version and fresh_only:
            return []
        await db.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, "
            "compatible_from INTEGER NOT NULL, "
            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        if state.legacy:
            await _record(db, schema, MIGRATIONS[0])
        elif state.version:
            await _check_applied(db, schema)
        pending = [m for m in MIGRATIONS if m.version > state.version]
        if state.version == 0:  # empty: all in one transaction, nothing to keep serving
            async with db.transaction():
                for m in pending:
                    for statement in _statements(m, schema, fresh=True):
                        await db.execute(statement)
                    await _record(db, schema, m)
            return pending
        for m in pending:
            if m.transactional:
                async with db.transaction():
                    for statement in _statements(m, schema):
                        await db.execute(statement)
                    await _record(db, schema, m)
            else:
                for statement in _statements(m, schema):
                    await db.execute(statement)
                await _record(db, schema, m)
        return pending


async def _record(db: Any, schema: str, m: Migration) -> None:
    await db.execute(
        f"INSERT INTO {schema}.schema_migrations (version, name, checksum, compatible_from) "
        "VALUES ($1, $2, $3, $4)",
        m.version, m.name, m.checksum, m.compatible_from,
    )  # fmt: skip


async def _check_applied(db: Any, schema: str) -> None:
    """An applied migration whose file changed since is a release mix-up: stop."""
    known = {m.version: m for m in MIGRATIONS}
    for version, checksum in await db.fetch(
        f"SELECT version, checksum FROM {schema}.schema_migrations ORDER BY version"
    ):
        m = known.get(version)
        if m is not None and m.checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{m.name} was applied from a different file "
                f"(checksum {checksum}, this release has {m.checksum})"
            )
