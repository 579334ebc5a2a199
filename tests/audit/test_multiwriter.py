"""Several processes append to one SQLite audit file at once (``--workers N``): they form one
chain, because each takes SQLite's write lock before it reads the chain head."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import sqlite3
import statistics
import time
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from gateway.audit.chain import Chain
from gateway.audit.sqlite import SqliteSink
from gateway.cli import main
from tests.audit.conftest import record
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
