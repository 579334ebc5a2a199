"""Several processes append to one SQLite audit file at once (``--workers N``): they form one
chain, because each takes SQLite's write lock before it reads the chain head."""

from __future__ import annotations

import asyncio
import fcntl
import functools
import multiprocessing
import os
import random
import sqlite3
import statistics
import threading
import time
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from gateway.audit import sqlite as sqlite_sink
from gateway.audit.chain import Chain
from gateway.audit.sqlite import SqliteSink
from gateway.cli import main
from tests.audit.conftest import record
from tests.support.chain import verified
from tests.support.server import write_yaml

KEY = "multi-writer-chain-key-0123456789abcdef"
PER_WRITER = 120


def _write_many(db: str, writer: int, start: multiprocessing.synchronize.Event) -> None:
    async def run() -> None:
        sink = SqliteSink(Path(db), Chain(KEY.encode()))
        start.wait()
        rng, n = random.Random(writer), 0
        while n < PER_WRITER:
            size = min(rng.randint(1, 7), PER_WRITER - n)
            await sink.write([record(writer * 10_000 + n + i) for i in range(size)])
            n += size
        await sink.close()

    asyncio.run(run())


def test_concurrent_writer_processes_form_one_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "audit.db"
    # Checkpoints every few syncs, so that they run while the other writers append and sync.
    monkeypatch.setattr(sqlite_sink, "_CHECKPOINT_EVERY", 3)
    # fork: the writers touch nothing but a new event loop and SQLite, and start in ms.
    fork = multiprocessing.get_context("fork")
    start = fork.Event()
    writers = [fork.Process(target=_write_many, args=(str(db), w, start)) for w in range(3)]
    for p in writers:
        p.start()
    start.set()  # all at once, after each has imported and opened its sink
    for p in writers:
        p.join(timeout=120)
        assert p.exitcode == 0

    config = write_yaml(
        tmp_path / "gateway.yaml",
        {"providers": {"demo": {"type": "mock"}}, "models": {},
         "audit": {"sqlite_path": "audit.db"}},
    )  # fmt: skip
    monkeypatch.setenv("GATEWAY_AUDIT_KEY", KEY)
    assert main(["--config", str(config), "audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {3 * PER_WRITER} record(s) verified")


def _hold_writer_lock(db: str, held: Event, released: Synchronized[float], hold_s: float) -> None:
    """Another writer in the middle of a long write transaction: it holds the file's lock."""

    async def run() -> None:
        sink = SqliteSink(Path(db), Chain(KEY.encode()))

        def long_tx(_: sqlite3.Connection) -> None:
            held.set()
            time.sleep(hold_s)
            released.value = time.monotonic()  # the lock is released as this returns

        await sink._run(sink._locked(long_tx))  # the sink's own write path, held open
        await sink.close()

    asyncio.run(run())


def test_a_waiting_writer_goes_on_as_soon_as_the_lock_is_released(tmp_path: Path) -> None:
    """The waiter is woken by the release, not by its next poll: SQLite's busy handler sleeps
    up to 100 ms between looks, which left a busy worker's core idle (bench/workers.py)."""
    db = tmp_path / "audit.db"
    fork = multiprocessing.get_context("fork")

    async def gaps() -> list[float]:
        sink = SqliteSink(db, Chain(KEY.encode()))
        await sink.write([record(0)])  # opened: the schema exists
        found = []
        for n in range(1, 8):
            held, released = fork.Event(), fork.Value("d", 0.0)
            args = (str(db), held, released, 0.3 + n / 20)
            holder = fork.Process(target=_hold_writer_lock, args=args)
            holder.start()
            assert held.wait(30)
            # The write path's lock, taken as a write takes it: the time it is held is read at
            # once (a write's own commit would add its fsync, tens of ms on a busy disk).
            got = await sink._run(sink._locked(lambda _: time.monotonic()))
            found.append(got - released.value)
            holder.join(30)
        await sink.close()
        return found

    waits = asyncio.run(gaps())
    assert statistics.median(waits) < 0.015, waits  # a poll: about 50 ms


async def _write_watching_the_loop(sink: SqliteSink, n: int) -> tuple[float, float]:
    """Write one record; (when the write returned, the longest the event loop went unserved
    meanwhile)."""
    longest, last = 0.0, time.monotonic()
    deadline = last + 20
    write = asyncio.ensure_future(sink.write([record(n)]))
    while not write.done():
        assert time.monotonic() < deadline, "the write never returned"
        await asyncio.sleep(0.005)
        longest, last = max(longest, time.monotonic() - last), time.monotonic()
    await write
    return time.monotonic(), longest


def test_an_append_waits_for_another_writer_off_the_event_loop(tmp_path: Path) -> None:
    """The append runs on the event loop when the lock is free at once; when another process
    holds it, the wait (and the append) go to the sink's thread and the loop serves on."""
    db = tmp_path / "audit.db"
    fork = multiprocessing.get_context("fork")

    async def run() -> tuple[float, float, float]:
        sink = SqliteSink(db, Chain(KEY.encode()))
        await sink.write([record(0)])  # opened: the loop's connection exists
        held, released = fork.Event(), fork.Value("d", 0.0)
        holder = fork.Process(target=_hold_writer_lock, args=(str(db), held, released, 0.5))
        holder.start()
        assert held.wait(30)
        done, longest = await _write_watching_the_loop(sink, 1)
        holder.join(30)
        report = await verified(sink)
        assert report.ok and report.checked == 2, report
        return done, released.value, longest

    done, released, longest = asyncio.run(run())
    assert done >= released  # it waited for the other writer
    assert longest < 0.2, longest  # and the loop was not blocked the 0.5 s it held the lock


def test_a_writer_holding_sqlites_lock_without_the_flock_does_not_block_the_loop(
    tmp_path: Path,
) -> None:
    """A writer that does not take the flock (another program, an older gateway) holds SQLite's
    write lock: the loop's connection has no busy timeout, so the append goes to the thread,
    whose connection waits for the lock as SQLite does."""
    db = tmp_path / "audit.db"

    async def run() -> float:
        sink = SqliteSink(db, Chain(KEY.encode()))
        await sink.write([record(0)])
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.5, other.execute, "COMMIT")
        _, longest = await _write_watching_the_loop(sink, 1)
        other.close()
        report = await verified(sink)
        assert report.ok and report.checked == 2, report
        return longest

    longest = asyncio.run(run())
    assert longest < 0.2, longest


def test_a_write_returns_only_once_the_wal_holding_its_commit_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``synchronous=NORMAL`` leaves a commit in the page cache; the sink's own fdatasync of the
    WAL makes it durable, after the writers' lock is released and before the write returns."""
    db = tmp_path / "audit.db"
    syncing, go_on = threading.Event(), threading.Event()
    synced: list[str] = []
    fdatasync = os.fdatasync

    def watched(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        syncing.set()
        assert go_on.wait(30)
        fdatasync(fd)

    async def run() -> None:
        sink = SqliteSink(db, Chain(KEY.encode()))
        await sink.write([record(0)])
        monkeypatch.setattr(os, "fdatasync", watched)
        write = asyncio.ensure_future(sink.write([record(1)]))
        assert await asyncio.to_thread(syncing.wait, 30)
        assert not write.done()
        with sqlite3.connect(db) as reader:  # committed, and the lock is free for others
            assert reader.execute("SELECT COUNT(*) FROM audit_records").fetchone() == (2,)
        assert _lock_is_free(db)
        go_on.set()
        await write
        await sink.close()

    asyncio.run(run())
    assert synced and synced[0] == f"{db}-wal"


def test_a_write_is_acknowledged_while_a_checkpoint_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint copies the WAL into the database file and syncs it, milliseconds on a busy
    disk: the write whose sync started it waited for it (one commit in 64, the p99 at
    concurrency 1). Here a checkpoint is held until the writes after it have returned."""
    db = tmp_path / "audit.db"
    checkpointing, go_on = threading.Event(), threading.Event()

    class Held(sqlite3.Connection):
        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if "wal_checkpoint" in sql:
                checkpointing.set()
                assert go_on.wait(30)
            return super().execute(sql, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite3, "connect", functools.partial(sqlite3.connect, factory=Held))
    monkeypatch.setattr(sqlite_sink, "_CHECKPOINT_EVERY", 2)

    async def run() -> None:
        sink = SqliteSink(db, Chain(KEY.encode()))
        try:
            for n in range(2):  # the second sync starts a checkpoint, which is held
                await asyncio.wait_for(sink.write([record(n)]), 5)
            assert await asyncio.to_thread(checkpointing.wait, 5)
            for n in range(2, 8):
                await asyncio.wait_for(sink.write([record(n)]), 5)
        finally:
            go_on.set()
        report = await verified(sink)
        assert report.ok and report.checked == 8, report
        await sink.close()

    asyncio.run(run())


def test_the_wal_starts_over_while_appends_go_on_during_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer starts the WAL over only once a checkpoint has copied every frame in it; with
    appends landing while checkpoints run (nobody waits for one) it must still happen, or the
    WAL grows without bound (65 MB after 2,000 commits)."""
    db = tmp_path / "audit.db"
    monkeypatch.setattr(sqlite_sink, "_CHECKPOINT_EVERY", 8)

    async def run() -> int:
        sink = SqliteSink(db, Chain(KEY.encode()))
        largest, wal = 0, Path(f"{db}-wal")
        for n in range(400):
            await sink.write([record(n)])
            largest = max(largest, wal.stat().st_size)  # noqa: ASYNC240  a stat, no disk wait
        report = await verified(sink)
        assert report.ok and report.checked == 400, report
        await sink.close()
        return largest

    largest = asyncio.run(run())
    # A commit of one record is about 8 pages of 4 KiB: a few checkpoint periods at most.
    assert largest < 4 * 8 * 8 * 4200, largest


def _lock_is_free(db: Path) -> bool:
    fd = os.open(f"{db}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True
