"""The default sink: one SQLite file in WAL mode; a batch is acknowledged once it is on disk.

Several processes write one chain (``serve --workers N``, a CLI purge). Each append takes an
``flock`` on ``FILE.lock`` (the kernel queues the waiters and wakes the next one when it is
released; SQLite's own lock is polled, up to 100 ms between looks) and then SQLite's write lock
(``BEGIN IMMEDIATE``) before it reads the chain head, so two writers never link onto the same
head. The others wait while one holds the lock, so it covers only the append itself:

- the records' JSON and digests are made before it (``prepare``);
- the append runs on the event loop's thread when both locks are free at once, and on the
  sink's thread (``CallThread``, which waits for them) when not. An append on that thread had
  to win the GIL back from the busy event loop after each SQLite call, up to the 5 ms switch
  interval each time: the lock was held 2-10 ms and two workers queued on it
  (docs/performance.md, bench/workers.py). The loop's connection has no busy timeout, so a
  writer that holds SQLite's lock without the flock sends the append to the thread too;
- the sync comes after it: with ``synchronous=NORMAL`` a commit writes the WAL without
  syncing it, and the sink's own ``fdatasync`` of the WAL, on its thread once the lock is
  released, makes the commit durable before the batch is acknowledged. That sync covers every
  frame written before it, by any process, and SQLite (NORMAL) overwrites WAL frames only after
  a checkpoint has synced them into the database file, so an acknowledged record is never only
  in a page cache;
- checkpoints (one started every ``_CHECKPOINT_EVERY`` syncs) run on a thread and connection
  of their own, so no sync, and no acknowledgement, waits for one: a checkpoint copies and
  syncs pages for milliseconds, which one commit in 64 used to wait (the c=1 p99). Running
  beside appends and syncs is what the other worker processes' checkpoints always did: a
  passive checkpoint copies only committed frames, syncs the WAL before it copies (its
  connection is NORMAL too, not OFF) and the database file before it counts the WAL as copied,
  and only then may a writer start the WAL over (``_checkpoint`` makes sure one does).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from gateway.audit.chain import GENESIS, Chain, Checkpoint, Prepared, StoredRow, prepare
from gateway.audit.record import AuditRecord
from gateway.audit.sink import PurgeResult, Query, SinkError
from gateway.audit.sql import COLUMNS, TOMBSTONE, schema, select_rows
from gateway.audit.thread import CallThread

__all__ = ["SqliteSink"]

log = logging.getLogger("gateway.audit")

T = TypeVar("T")
P = "audit_"
# Syncs between passive checkpoints: a commit adds 8 to 25 WAL pages (1 to 28 records), so
# about SQLite's own default, a checkpoint per 1,000 pages.
_CHECKPOINT_EVERY = 64


# The append's statements, made once (the statement cache is keyed by their text).
_HEAD = f"SELECT seq, hash FROM {P}head WHERE id = 1"
_INSERT = f"INSERT INTO {P}records ({COLUMNS}) VALUES ({','.join('?' * 12)})"
_MOVE_HEAD = f"UPDATE {P}head SET seq = ?, hash = ? WHERE id = 1"


def _ph(_: int) -> str:
    return "?"


def _row(values: Sequence[object]) -> StoredRow:
    return StoredRow(*values)  # type: ignore[arg-type]


def _busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


class SqliteSink:
    """``AuditStore`` on a SQLite file (created with its folder if missing)."""

    def __init__(self, path: Path, chain: Chain) -> None:
        self._path = path
        self.chain = chain
        self._thread = CallThread("audit-sqlite")
        self._db: sqlite3.Connection | None = None  # the thread's: reads, purges, waits
        self._lock_fd: int | None = None
        # The event loop's connection, and its own open file of the lock: ``flock`` locks
        # belong to an open file, so the loop cannot take the lock the thread holds.
        self._appender: tuple[sqlite3.Connection, int] | None = None
        # The WAL, opened by ``_sync`` again after a connection closed: with none of this
        # process's connections open, SQLite may have deleted the file (and a new one follows).
        self._wal_fd: int | None = None
        self._wal_stale = False
        self._syncs = 0  # since the last checkpoint started
        self._checkpointer = CallThread("audit-checkpoint")
        # The checkpointer's connection and its own open file of the writers' lock.
        self._checkpoint_db: tuple[sqlite3.Connection, int] | None = None
        # The database file, for the checkpointer's fsync. Closed last: closing a file drops
        # every POSIX lock the process holds on it, SQLite's included.
        self._db_fd: int | None = None
        self._checkpointing = False  # one at a time: a sync finding one running starts none

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            try:
                return fn(self._connect())
            except (sqlite3.Error, OSError) as exc:
                if self._db is not None:
                    self._db.close()
                    self._db = None
                    self._wal_stale = True
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
        fcntl.flock(self._lock_file(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file(), fcntl.LOCK_UN)

    def _lock_file(self) -> int:
        if self._lock_fd is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = self._open_lock()
        return self._lock_fd

    def _open_lock(self) -> int:
        return os.open(
            self._path.with_name(self._path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600
        )

    def _open(self, busy_timeout_ms: int) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        # First, so worker processes opening the file together wait for each other.
        db.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        db.execute("PRAGMA synchronous=NORMAL")  # the sink syncs the WAL itself (_sync)
        db.execute("PRAGMA wal_autocheckpoint=0")  # and checkpoints on its thread
        return db

    def _connect(self) -> sqlite3.Connection:
        """The thread's connection, and the loop's once the file is in WAL mode."""
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = self._open(10_000)
            with self._writers_lock():
                db.execute("PRAGMA journal_mode=WAL")
                for statement in schema(P, "BLOB"):
                    db.execute(statement)
            self._db = db
        if self._appender is None:
            self._appender = (self._open(0), self._open_lock())
        return self._db

    async def write(self, records: Sequence[AuditRecord], *, replay: bool = False) -> None:
        prepared = prepare(records)
        if replay or not self._append_here(prepared):
            await self._run(self._locked(lambda db: self._append(db, prepared, replay)))
        await self._run(self._sync)

    def _append_here(self, prepared: list[Prepared]) -> bool:
        """Append on the event loop's thread if both locks are free at once; False if not
        (or before the thread has opened the file)."""
        if self._appender is None:
            return False
        db, lock = self._appender
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        broken = False
        try:
            self._append(db, prepared, replay=False)
        except sqlite3.Error as exc:
            if _busy(exc):  # a writer without the flock holds SQLite's lock: wait on the thread
                return False
            broken = True
            raise SinkError(f"sqlite {self._path}: {exc}") from exc
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            if broken:  # opened again by the thread's next call
                self._appender = None
                self._wal_stale = True
                db.close()
                os.close(lock)
        return True

    def _append(self, db: sqlite3.Connection, prepared: list[Prepared], replay: bool) -> None:
        """Link ``prepared`` onto the chain head and commit (not yet synced: ``_sync``)."""
        db.execute("BEGIN IMMEDIATE")
        try:
            if replay:
                known = {
                    r[0]
                    for r in db.execute(
                        f"SELECT request_id FROM {P}records WHERE request_id IN "
                        f"({','.join('?' * len(prepared))})",
                        [record.request_id for record, _, _ in prepared],
                    )
                }
                prepared = [p for p in prepared if p[0].request_id not in known]
            head = db.execute(_HEAD).fetchone()
            seq, prev = head if head else (0, GENESIS)
            rows = self.chain.link_prepared(seq, prev, prepared)
            db.executemany(_INSERT, [r.values() for r in rows])
            if rows and head is None:  # the chain starts: row 2 names its key
                db.execute(
                    f"INSERT OR IGNORE INTO {P}head (id, seq, hash) VALUES (2, 0, ?)",
                    (self.chain.fingerprint(),),
                )
                db.execute(
                    f"INSERT INTO {P}head (id, seq, hash) VALUES (1, ?, ?)",
                    (rows[-1].seq, rows[-1].hash),
                )
            elif rows:
                db.execute(_MOVE_HEAD, (rows[-1].seq, rows[-1].hash))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _sync(self, db: sqlite3.Connection) -> None:
        """Make every commit so far durable: ``fdatasync`` the WAL (the module's docstring);
        every ``_CHECKPOINT_EVERY`` syncs, start a checkpoint on the checkpointer's thread."""
        if self._wal_fd is None or self._wal_stale:
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None
            self._wal_stale = False
            self._wal_fd = os.open(self._path.with_name(self._path.name + "-wal"), os.O_RDONLY)
        # The one call here that lets go of the GIL: each has to win it back from the busy
        # event loop (os.stat and fstat of the WAL here, to see it replaced, cost two more).
        os.fdatasync(self._wal_fd)
        self._syncs += 1
        if self._syncs >= _CHECKPOINT_EVERY and not self._checkpointing:
            self._syncs = 0
            self._checkpointing = True
            self._checkpointer.post(self._checkpoint)

    def _checkpoint(self) -> None:
        """Copy the WAL into the database file, then make sure the next append starts it over
        (the checkpointer's thread).

        A writer starts the WAL over only if, when it begins, a checkpoint has copied every
        frame and synced the database file; appends go on during a checkpoint here, so without
        more the WAL grew without bound under steady load (65 MB after 2,000 commits). So: copy
        what is committed and sync the database file, outside the writers' lock, then take the
        lock, where no append can land, for a second checkpoint that copies the few frames
        appended meanwhile and syncs them: the only part an append may wait for."""
        try:
            if self._checkpoint_db is None:
                self._checkpoint_db = (self._open(1_000), self._open_lock())
            if self._db_fd is None:
                self._db_fd = os.open(self._path, os.O_RDONLY)
            db, lock = self._checkpoint_db
            busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if busy:  # another process's checkpoint is running
                return
            if copied < frames:  # appends landed: SQLite left the database file unsynced
                os.fsync(self._db_fd)
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        except (sqlite3.Error, OSError) as exc:  # the records are on disk: the next one tries
            log.warning("audit checkpoint of %s failed: %s", self._path, exc)
            self._close_checkpointer()
        finally:
            self._checkpointing = False

    def _close_checkpointer(self) -> None:
        if self._checkpoint_db is not None:
            self._checkpoint_db[0].close()
            os.close(self._checkpoint_db[1])
            self._checkpoint_db = None
            self._wal_stale = True  # as when the thread's connection closes

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

        result = await self._run(self._locked(tx))
        await self._run(self._sync)
        return result

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
        def shut() -> None:
            if self._appender is not None:
                self._appender[0].close()
                os.close(self._appender[1])
                self._appender = None
            if self._db is not None:
                self._db.close()
                self._db = None
            for fd in (self._wal_fd, self._lock_fd, self._db_fd):  # every connection closed
                if fd is not None:
                    os.close(fd)
            self._wal_fd = self._lock_fd = self._db_fd = None

        if self._checkpointing or self._checkpoint_db is not None:
            await self._checkpointer.run(self._close_checkpointer)  # after one running
        self._checkpointer.stop()
        if self._db is not None or self._lock_fd is not None or self._appender is not None:
            await self._thread.run(shut)
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
