"""The overview under ``gateway serve --workers 2``: each worker rolls up the settled buckets it
finds missing, on the one shared review store, from the one shared audit chain; the rows are
keyed by (bucket, workflow) and written whole, so every view, whichever worker serves it,
counts each request once."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import time
from pathlib import Path

from gateway.audit.chain import Chain
from gateway.audit.sqlite import SqliteSink
from tests.audit.conftest import record
from tests.cli.test_workers import MOCK_ONLY, _loaded_at
from tests.conftest import UPSTREAM_KEYS, gateway_config
from tests.console.conftest import Console
from tests.fakes.upstream import FakeUpstream
from tests.support.clients import openai_client
from tests.support.process import serve
from tests.support.server import new_key, write_yaml

_OLD, _LIVE = 400, 6
_ROW = re.compile(r"<tr><td>chat_app</td><td>(\d+)</td>")


def test_two_workers_roll_up_each_request_once(upstream: FakeUpstream, tmp_path: Path) -> None:
    config = write_yaml(
        tmp_path / "gateway.yaml", {**gateway_config(upstream), "audit": {"purge_interval_s": 0}}
    )
    write_yaml(tmp_path / "policies" / "chat_app.yaml", MOCK_ONLY)
    analyst = new_key(tmp_path / "keys.yaml", "alice", ["analyst"])
    admin = new_key(tmp_path / "keys.yaml", "root", ["admin"])
    now = time.time()
    # Settled buckets of the last three hours, written before the gateway starts: no view has
    # rolled them up yet, so both workers find them missing.
    old = [record(n, time=now - 3 * 3600 + n * 25, request_id=f"old{n:04d}")
           for n in range(_OLD)]  # fmt: skip

    async def write() -> None:
        sink = SqliteSink(tmp_path / "audit.db", Chain(None))
        try:
            await sink.write(old)
        finally:
            await sink.close()

    asyncio.run(write())
    proc, url = serve(config, tmp_path / "gw.log", "--workers", "2", env=UPSTREAM_KEYS)
    try:
        workers: set[float] = set()
        deadline = time.monotonic() + 20
        while len(workers) < 2 and time.monotonic() < deadline:
            workers.add(_loaded_at(url))
        assert len(workers) == 2, "the second worker never answered"
        client = openai_client(base_url=f"{url}/w/chat_app/v1", api_key=analyst, max_retries=0)
        for _ in range(_LIVE):  # the open bucket, read live
            client.chat.completions.create(
                model="mock-model", messages=[{"role": "user", "content": "hello"}]
            )
        # Several sessions, each its own connection: the workers take them between them, and
        # each view starts (or finds) its worker's background roll-up.
        consoles = [Console(url, admin) for _ in range(6)]
        try:
            counts: list[int] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                pages = [c.get("overview?hours=4").text for c in consoles]
                if all('class="behind"' not in p for p in pages):
                    counts = [int(m.group(1)) for p in pages for m in _ROW.finditer(p)]
                    break
                time.sleep(0.2)
            assert len(counts) == len(consoles), "the roll-up never caught up"
            assert counts == [_OLD + _LIVE] * len(consoles)
        finally:
            for c in consoles:
                c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    with sqlite3.connect(tmp_path / "reviews.db") as db:
        rows = db.execute(
            "SELECT bucket, data FROM review_rollups WHERE workflow = 'chat_app'"
        ).fetchall()
    assert len({b for b, _ in rows}) == len(rows)  # one row per bucket
    assert sum(json.loads(d)["requests"] for _, d in rows) == _OLD
