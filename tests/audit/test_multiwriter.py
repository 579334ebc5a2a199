"""Several processes append to one SQLite audit file at once (``--workers N``): they form one
chain, because each takes SQLite's write lock before it reads the chain head."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
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
