"""The PostgreSQL sink's SQL as the release before migrations ran it, kept verbatim so the
tests can run the previous release's statements against the migrated schema."""

from __future__ import annotations

from typing import Any

from gateway.audit.chain import GENESIS, Chain
from gateway.audit.record import AuditRecord
from gateway.audit.sql import COLUMNS


def ddl(schema: str) -> list[str]:
    """What the previous release ran on every start (CREATE ... IF NOT EXISTS, the head row)."""
    p, i = f"{schema}.", f"{schema}_"
    return [
        f"CREATE SCHEMA IF NOT EXISTS {schema}",
        f"""CREATE TABLE IF NOT EXISTS {p}records (
            seq BIGINT PRIMARY KEY, time DOUBLE PRECISION NOT NULL, workflow TEXT,
            request_id TEXT NOT NULL, decision TEXT NOT NULL, subject TEXT,
            reasons TEXT NOT NULL, entity_types TEXT NOT NULL, body BYTEA,
            digest TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)""",
        f"CREATE INDEX IF NOT EXISTS {i}records_time ON {p}records (time)",
        f"CREATE INDEX IF NOT EXISTS {i}records_rid ON {p}records (request_id)",
        f"""CREATE TABLE IF NOT EXISTS {p}head (
            id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {p}checkpoints (
            seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
            purged BIGINT NOT NULL, signature TEXT NOT NULL)""",
        f"INSERT INTO {p}head (id, seq, hash) VALUES (1, 0, '{GENESIS}') "
        "ON CONFLICT (id) DO NOTHING",
    ]


async def start(db: Any, schema: str) -> None:
    for statement in ddl(schema):
        await db.execute(statement)


async def write(db: Any, schema: str, chain: Chain, records: list[AuditRecord]) -> None:
    """The previous release's write transaction."""
    p = f"{schema}."
    async with db.transaction():
        seq, prev = await db.fetchrow(f"SELECT seq, hash FROM {p}head WHERE id = 1 FOR UPDATE")
        rows = chain.link(seq, prev, records)
        await db.executemany(
            f"INSERT INTO {p}records ({COLUMNS}) VALUES "
            f"({','.join(f'${i}' for i in range(1, 13))})",
            [r.values() for r in rows],
        )
        await db.execute(
            f"UPDATE {p}head SET seq = $1, hash = $2 WHERE id = 1", rows[-1].seq, rows[-1].hash
        )


async def request_ids(db: Any, schema: str) -> list[str]:
    """The previous release's read: every live record, in chain order."""
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM {schema}.records WHERE body IS NOT NULL ORDER BY seq LIMIT 1000"
    )
    return [r["request_id"] for r in rows]
