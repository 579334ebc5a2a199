"""The default sink: one SQLite file, WAL with ``synchronous=FULL`` so a commit is on disk.

sqlite3 blocks, so every call runs on one dedicated thread (which also serializes them);
``BEGIN IMMEDIATE`` takes the write lock before the chain head is read, so CLI purges and
the gateway never link onto the same head.

Several processes write one chain (``serve --workers N``, a CLI purge). SQLite's own lock is
polled: a writer that finds it taken sleeps 1, 2, 5, 10 ... up to 100 ms before it looks
again, so two busy workers took turns with idle gaps (p99 100-130 ms, 1.24x the throughput of
one worker, bench/workers.py). Each write transaction therefore first takes an ``flock`` on
``FILE.lock``: the kernel queues the waiters and wakes the next one when the lock is released,
and the waiter's event loop keeps serving meanwhile, its records joining the next batch.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from gateway.audit.chain import GENESIS, Chain, Checkpoint, StoredRow
from gateway.audit.record import AuditRecord
from gateway.audit.sink import PurgeResult, Query, SinkError
from gateway.audit.sql import COLUMNS, TOMBSTONE, schema, select_rows
from gateway.audit.thread import CallThread

__all__ = ["SqliteSink"]

T = TypeVar("T")
P = "audit_"


def _ph(_: int) -> str:
    return "?"


def _row(values: Sequence[object]) -> StoredRow:
    return StoredRow(*values)  # type: ignore[arg-type]


class SqliteSink:
    """``AuditStore`` on a SQLite file (created with its folder if missing)."""

    def __init__(self, path: Path, chain: Chain) -> None:
        self._path = path
        self.chain = chain
        self._thread = CallThread("audit-sqlite")
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            try:
                return fn(self._connect())
            except sqlite3.Error as exc:
                if self._db is not None:
                    self._db.close()
                    self._db = None
                raise SinkError(f"sqlite {self._path}: {exc}") from exc

        return await self._thread.run(call)

    def _locked(self, fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
        """``fn`` as a write transaction under the writers' ``flock`` (the module's docstring)."""

        def call(db: sqlite3.Connection) -> T:
            with self._writers_lock():
                return fn(db)

        return call

    @contextlib.contextmanager
    def _writers_lock(self) -> Iterator[None]:
        """The ``flock`` every write to the file takes first, the schema's included: a
        writer left to SQLite's polling would starve while the others hand the lock on."""
        if self._lock_fd is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(
                self._path.with_name(self._path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600
            )
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            # First, so worker processes opening the file together wait for each other.
            db.execute("PRAGMA busy_timeout=10000")
            with self._writers_lock():
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                for statement in schema(P, "BLOB"):
                    db.execute(statement)
            self._db = db
        return self._db

    async def write(self, records: Sequence[AuditRecord], *, replay: bool = False) -> None:
        def tx(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                todo = list(records)
                if replay:
                    known = {
                        r[0]
                        for r in db.execute(
                            f"SELECT request_id FROM {P}records WHERE request_id IN "
                            f"({','.join('?' * len(todo))})",
                            [r.request_id for r in todo],
                        )
                    }
                    todo = [r for r in todo if r.request_id not in known]
                head = db.execute(f"SELECT seq, hash FROM {P}head WHERE id = 1").fetchone()
                seq, prev = head if head else (0, GENESIS)
                rows = self.chain.link(seq, prev, todo)
                db.executemany(
                    f"INSERT INTO {P}records ({COLUMNS}) VALUES ({','.join('?' * 12)})",
                    [r.values() for r in rows],
                )
                if rows and head is None:  # the chain starts: row 2 names its key
                    db.execute(
                        f"INSERT OR IGNORE INTO {P}head (id, seq, hash) VALUES (2, 0, ?)",
                        (self.chain.fingerprint(),),
                    )
                if rows:
                    db.execute(
                        f"INSERT INTO {P}head (id, seq, hash) VALUES (1, ?, ?) "
                        "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                        (rows[-1].seq, rows[-1].hash),
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

        await self._run(self._locked(tx))

    async def query(self, query: Query) -> list[StoredRow]:
        sql, args = select_rows(P, query, _ph)
        return await self._run(lambda db: [_row(r) for r in db.execute(sql, args)])

    async def get(self, key: str) -> StoredRow | None:
        column = "seq" if key.isdigit() else "request_id"
        value: object = int(key) if key.isdigit() else key
        sql = f"SELECT {COLUMNS} FROM {P}records WHERE {column} = ?"
        found = await self._run(lambda db: db.execute(sql, (value,)).fetchone())
        return _row(found) if found else None

    async def rows(self) -> AsyncIterator[StoredRow]:
        sql = f"SELECT {COLUMNS} FROM {P}records WHERE seq > ? ORDER BY seq LIMIT 1000"
        after = -1
        while True:

            def read(db: sqlite3.Connection, a: int = after) -> list[Any]:
                return db.execute(sql, (a,)).fetchall()

            page = await self._run(read)
            for values in page:
                yield _row(values)
            if len(page) < 1000:
                return
            after = page[-1][0]

    async def head(self) -> tuple[int, str] | None:
        found = await self._run(
            lambda db: db.execute(f"SELECT seq, hash FROM {P}head WHERE id = 1").fetchone()
        )
        return (found[0], found[1]) if found else None

    async def key_fingerprint(self) -> str | None:
        found = await self._run(
            lambda db: db.execute(f"SELECT hash FROM {P}head WHERE id = 2").fetchone()
        )
        return str(found[0]) if found else None

    async def checkpoint(self) -> Checkpoint | None:
        sql = f"SELECT seq, hash, at, purged, signature FROM {P}checkpoints ORDER BY seq DESC"
        found = await self._run(lambda db: db.execute(sql).fetchone())
        return Checkpoint(*found) if found else None

    async def purge(
        self, cutoffs: dict[str, float], default_cutoff: float, *, dry_run: bool, now: float
    ) -> PurgeResult:
        def tx(db: sqlite3.Connection) -> PurgeResult:
            db.execute("BEGIN IMMEDIATE")
            try:
                purged: dict[str, int] = {}
                for workflow, cutoff in cutoffs.items():
                    purged[workflow] = _tombstone(
                        db, "workflow = ? AND time < ?", [workflow, cutoff], dry_run
                    )
                names = ",".join("?" * len(cutoffs))
                others = f"(workflow IS NULL OR workflow NOT IN ({names})) AND time < ?"
                purged["*"] = _tombstone(db, others, [*cutoffs, default_cutoff], dry_run)
                dropped, checkpoint = 0, None
                if not dry_run:
                    dropped, checkpoint = self._fold(db, now)
                db.execute("ROLLBACK" if dry_run else "COMMIT")
                return PurgeResult({k: v for k, v in purged.items() if v}, dropped, checkpoint)
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

        return await self._run(self._locked(tx))

    def _fold(self, db: sqlite3.Connection, now: float) -> tuple[int, Checkpoint | None]:
        """Drop the tombstones that start the chain, leaving a signed checkpoint."""
        live = db.execute(f"SELECT MIN(seq) FROM {P}records WHERE body IS NOT NULL").fetchone()[0]
        bound = "" if live is None else f"WHERE seq < {int(live)}"
        last = db.execute(
            f"SELECT seq, hash FROM {P}records {bound} ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if last is None:
            return 0, None
        dropped = db.execute(f"DELETE FROM {P}records WHERE seq <= ?", (last[0],)).rowcount
        cp = self.chain.sign(last[0], last[1], now, dropped)
        db.execute(
            f"INSERT INTO {P}checkpoints (seq, hash, at, purged, signature) VALUES (?,?,?,?,?)",
            (cp.seq, cp.hash, cp.at, cp.purged, cp.signature),
        )
        return dropped, cp

    async def close(self) -> None:
        def shut(_: sqlite3.Connection) -> None:
            if self._db is not None:
                self._db.close()
                self._db = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

        if self._db is not None or self._lock_fd is not None:
            await self._run(shut)
        self._thread.stop()

    async def readiness(self) -> str | None:
        """Always ready: the file and its schema are created when first opened."""
        return None


def _tombstone(db: sqlite3.Connection, clause: str, args: list[object], dry_run: bool) -> int:
    if dry_run:
        sql = f"SELECT COUNT(*) FROM {P}records WHERE body IS NOT NULL AND {clause}"
        return int(db.execute(sql, args).fetchone()[0])
    sql = f"UPDATE {P}records SET {TOMBSTONE} WHERE body IS NOT NULL AND {clause}"
    return db.execute(sql, args).rowcount
