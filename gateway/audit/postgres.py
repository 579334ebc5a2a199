"""The PostgreSQL sink (``stores.audit_url``), on asyncpg.

asyncpg was measured against psycopg 3 committing batches on this machine: 85 µs per record
at 16 records a commit against 209 µs, and the same at 128 (docs/performance.md). The chain
head row is locked (``FOR UPDATE``) in each write transaction, so gateway instances sharing
the database append to one chain in turn. The schema is versioned (gateway/audit/migrate.py):
the sink creates an empty one on its first start, and only ``gateway migrate`` upgrades one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from gateway.audit.chain import Chain, Checkpoint, StoredRow
from gateway.audit.migrate import incompatibility, migrate, read_state
from gateway.audit.record import AuditRecord
from gateway.audit.sink import PurgeResult, Query, SinkError
from gateway.audit.sql import COLUMNS, TOMBSTONE, select_rows

__all__ = ["PostgresSink"]

# Everything asyncpg raises for a lost or refused connection or a failed statement.
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def _ph(n: int) -> str:
    return f"${n}"


def _row(r: Any) -> StoredRow:
    values: list[Any] = [bytes(v) if isinstance(v, memoryview) else v for v in r]
    return StoredRow(*values)


class PostgresSink:
    """``AuditStore`` on PostgreSQL, tables in ``schema`` (created if it is empty)."""

    def __init__(self, url: str, schema_name: str, chain: Chain) -> None:
        self._url = url
        self._p = f"{schema_name}."
        self._schema = schema_name
        self.chain = chain
        self._pool: asyncpg.Pool | None = None

    async def _conn_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            pool = await asyncpg.create_pool(self._url, min_size=1, max_size=4, timeout=5)
            async with pool.acquire() as db:
                await migrate(db, self._schema, fresh_only=True)
            self._pool = pool
        return self._pool

    async def write(self, records: Sequence[AuditRecord], *, replay: bool = False) -> None:
        p = self._p
        try:
            pool = await self._conn_pool()
            async with pool.acquire() as db, db.transaction():
                seq, prev = await db.fetchrow(
                    f"SELECT seq, hash FROM {p}head WHERE id = 1 FOR UPDATE"
                )
                todo = list(records)
                if replay:
                    known = {
                        r[0]
                        for r in await db.fetch(
                            f"SELECT request_id FROM {p}records WHERE request_id = ANY($1)",
                            [r.request_id for r in todo],
                        )
                    }
                    todo = [r for r in todo if r.request_id not in known]
                rows = self.chain.link(seq, prev, todo)
                if rows and seq == 0:  # the chain starts: row 2 names its key
                    await db.execute(
                        f"INSERT INTO {p}head (id, seq, hash) VALUES (2, 0, $1) "
                        "ON CONFLICT (id) DO NOTHING",
                        self.chain.fingerprint(),
                    )
                if rows:
                    await db.executemany(
                        f"INSERT INTO {p}records ({COLUMNS}) VALUES "
                        f"({','.join(_ph(i) for i in range(1, 13))})",
                        [r.values() for r in rows],
                    )
                    await db.execute(
                        f"UPDATE {p}head SET seq = $1, hash = $2 WHERE id = 1",
                        rows[-1].seq,
                        rows[-1].hash,
                    )
        except _ERRORS as exc:
            await self._drop_pool()
            raise SinkError(f"postgresql: {exc}") from exc

    async def _drop_pool(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.terminate()

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        try:
            pool = await self._conn_pool()
            async with pool.acquire() as db:
                return list(await db.fetch(sql, *args))
        except _ERRORS as exc:
            await self._drop_pool()
            raise SinkError(f"postgresql: {exc}") from exc

    async def query(self, query: Query) -> list[StoredRow]:
        sql, args = select_rows(self._p, query, _ph)
        return [_row(r) for r in await self._fetch(sql, *args)]

    async def get(self, key: str) -> StoredRow | None:
        column = "seq" if key.isdigit() else "request_id"
        value: object = int(key) if key.isdigit() else key
        found = await self._fetch(
            f"SELECT {COLUMNS} FROM {self._p}records WHERE {column} = $1", value
        )
        return _row(found[0]) if found else None

    async def rows(self) -> AsyncIterator[StoredRow]:
        after = -1
        while True:
            page = await self._fetch(
                f"SELECT {COLUMNS} FROM {self._p}records WHERE seq > $1 ORDER BY seq LIMIT 1000",
                after,
            )
            for r in page:
                yield _row(r)
            if len(page) < 1000:
                return
            after = page[-1][0]

    async def head(self) -> tuple[int, str] | None:
        found = await self._fetch(f"SELECT seq, hash FROM {self._p}head WHERE id = 1")
        return (found[0][0], found[0][1]) if found and found[0][0] else None

    async def key_fingerprint(self) -> str | None:
        found = await self._fetch(f"SELECT hash FROM {self._p}head WHERE id = 2")
        return str(found[0][0]) if found else None

    async def checkpoint(self) -> Checkpoint | None:
        found = await self._fetch(
            f"SELECT seq, hash, at, purged, signature FROM {self._p}checkpoints "
            "ORDER BY seq DESC LIMIT 1"
        )
        return Checkpoint(*found[0]) if found else None

    async def purge(
        self, cutoffs: dict[str, float], default_cutoff: float, *, dry_run: bool, now: float
    ) -> PurgeResult:
        p = self._p
        verb = "SELECT COUNT(*) FROM" if dry_run else "WITH t AS (UPDATE"
        try:
            pool = await self._conn_pool()
            async with pool.acquire() as db, db.transaction():
                await db.execute(f"SELECT 1 FROM {p}head WHERE id = 1 FOR UPDATE")

                async def tombstone(clause: str, *args: object) -> int:
                    if dry_run:
                        sql = f"{verb} {p}records WHERE body IS NOT NULL AND {clause}"
                    else:
                        sql = (f"{verb} {p}records SET {TOMBSTONE} WHERE body IS NOT NULL "
                               f"AND {clause} RETURNING 1) SELECT COUNT(*) FROM t")  # fmt: skip
                    return int(await db.fetchval(sql, *args))

                purged = {w: await tombstone("workflow = $1 AND time < $2", w, c)
                          for w, c in cutoffs.items()}  # fmt: skip
                purged["*"] = await tombstone(
                    "(workflow IS NULL OR NOT (workflow = ANY($1))) AND time < $2",
                    list(cutoffs), default_cutoff,
                )  # fmt: skip
                dropped, checkpoint = 0, None
                if not dry_run:
                    dropped, checkpoint = await self._fold(db, now)
        except _ERRORS as exc:
            await self._drop_pool()
            raise SinkError(f"postgresql: {exc}") from exc
        return PurgeResult({k: v for k, v in purged.items() if v}, dropped, checkpoint)

    async def _fold(self, db: Any, now: float) -> tuple[int, Checkpoint | None]:
        """Drop the tombstones that start the chain, leaving a signed checkpoint."""
        p = self._p
        live = await db.fetchval(f"SELECT MIN(seq) FROM {p}records WHERE body IS NOT NULL")
        bound = "" if live is None else f"WHERE seq < {int(live)}"
        last = await db.fetchrow(
            f"SELECT seq, hash FROM {p}records {bound} ORDER BY seq DESC LIMIT 1"
        )
        if last is None:
            return 0, None
        delete = f"WITH d AS (DELETE FROM {p}records WHERE seq <= $1 RETURNING 1) "
        dropped = int(await db.fetchval(delete + "SELECT COUNT(*) FROM d", last[0]))
        cp = self.chain.sign(last[0], last[1], now, dropped)
        await db.execute(
            f"INSERT INTO {p}checkpoints (seq, hash, at, purged, signature) "
            "VALUES ($1, $2, $3, $4, $5)",
            cp.seq, cp.hash, cp.at, cp.purged, cp.signature,
        )  # fmt: skip
        return dropped, cp

    async def readiness(self) -> str | None:
        """Why this instance must not serve: the database unreachable, or its schema older
        or newer than this release works with; None when it may."""
        try:
            async with asyncio.timeout(2.0):
                pool = await self._conn_pool()
                async with pool.acquire() as db:
                    state = await read_state(db, self._schema)
        except _ERRORS as exc:  # TimeoutError included
            await self._drop_pool()
            return f"audit store unreachable: {type(exc).__name__}"
        return incompatibility(state)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
