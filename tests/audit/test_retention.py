"""Retention end to end: the gateway's periodic purge and ``gateway audit purge`` trim records
past their workflow's ``audit_days`` and leave a chain ``gateway audit verify`` passes; an
edit behind the gateway's back makes verify fail naming the record."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from gateway.audit import Query
from gateway.audit.chain import Chain
from gateway.audit.sqlite import SqliteSink
from tests.audit.conftest import AuditedGateway, record, start_gateway
from tests.fakes.upstream import FakeUpstream

DAY = 86400.0


def _cli(gw: AuditedGateway, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(gw.config_dir / "gateway.yaml"), "audit", *args],
        capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ),
    )  # fmt: skip


async def _seed(db: Path) -> None:
    """Records from before this gateway: 'kept' keeps 7 days, chat_app the default 90."""
    sink = SqliteSink(db, Chain(None))
    now = time.time()
    await sink.write([
        record(1, workflow="kept", time=now - 10 * DAY),
        record(2, workflow="chat_app", time=now - 10 * DAY),
        record(3, workflow="kept", time=now - 1 * DAY),
    ])  # fmt: skip
    await sink.close()


async def test_the_gateway_purges_periodically(upstream: FakeUpstream, tmp_path: Path) -> None:
    await _seed(tmp_path / "audit.db")
    gw, server = start_gateway(tmp_path, upstream, {"purge_interval_s": 0.2})
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with sqlite3.connect(gw.db) as db:
                left = [
                    r[0] for r in db.execute("SELECT request_id FROM audit_records ORDER BY seq")
                ]
            if left == ["req000002", "req000003"]:
                break
            await asyncio.sleep(0.05)
        assert left == ["req000002", "req000003"]  # seq 1 folded into a checkpoint
        gw.openai("kept").chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )  # type: ignore[arg-type]
    finally:
        server.stop()
    verified = _cli(gw, "verify")
    assert verified.returncode == 0 and "from checkpoint seq 1" in verified.stdout, verified.stdout


async def test_cli_purge_then_verify_and_tamper(upstream: FakeUpstream, tmp_path: Path) -> None:
    await _seed(tmp_path / "audit.db")
    gw, server = start_gateway(tmp_path, upstream)  # purge_interval_s: 0
    server.stop()
    dry = _cli(gw, "purge", "--dry-run")
    assert dry.stdout.splitlines() == ["would purge 1 record(s) of kept"]
    sink = SqliteSink(gw.db, Chain(None))
    assert len(await sink.query(Query())) == 3
    await sink.close()
    done = _cli(gw, "purge")
    assert done.stdout.splitlines() == [
        "purged 1 record(s) of kept",
        "checkpoint at seq 1: 1 purged record(s) folded into it",
    ]
    assert _cli(gw, "verify").returncode == 0
    with sqlite3.connect(gw.db) as db:
        db.execute("UPDATE audit_records SET decision = 'deny' WHERE seq = 3")
    bad = _cli(gw, "verify")
    assert bad.returncode == 1
    assert bad.stdout.startswith("TAMPERED: record seq 3 (request req000003): edited"), bad.stdout
