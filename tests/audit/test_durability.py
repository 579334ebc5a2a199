"""Nothing lost: kill -9 under load in sync mode, PostgreSQL stopped mid-load, and a sink
and spool both gone (on_failure: block)."""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.error import HTTPError, URLError

import asyncpg
import openai
import orjson
import pytest

from gateway.audit.chain import Chain
from gateway.audit.postgres import PostgresSink
from tests.audit.conftest import start_gateway
from tests.audit.privatepg import PrivatePostgres
from tests.conftest import UPSTREAM_KEYS
from tests.fakes.upstream import FakeUpstream
from tests.support.chain import verified

BODY = orjson.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]})
STREAM = orjson.dumps(
    {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "stream": True}
)


def _post(base: str, key: str, stream: bool = False) -> str | None:
    """The request id of a completed 200 response (a stream: one that got ``[DONE]``)."""
    request = urllib.request.Request(
        f"{base}/w/chat_app/v1/chat/completions", data=STREAM if stream else BODY,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            if response.status != 200 or (stream and not body.endswith(b"data: [DONE]\n\n")):
                return None
            return response.headers["x-request-id"]  # type: ignore[no-any-return]
    # A gateway killed mid-response: the connection drops, a chunked body ends torn.
    except (HTTPError, URLError, OSError, http.client.HTTPException, ValueError):
        return None


def _load(
    base: str, key: str, stop: threading.Event, done: list[str], threads: int = 8
) -> list[threading.Thread]:
    """Closed-loop clients, half of them streaming."""

    def worker(stream: bool) -> None:
        while not stop.is_set():
            if (rid := _post(base, key, stream)) is not None:
                done.append(f"{rid} stream" if stream else rid)

    workers = [
        threading.Thread(target=worker, args=(i % 2 == 1,), daemon=True) for i in range(threads)
    ]
    for w in workers:
        w.start()
    return workers


def _serve(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **UPSTREAM_KEYS}
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(config), "serve", "--port", str(port),
             "--log-level", "warning"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc
        except (URLError, OSError):
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"gateway did not start: {log.read_text()[-2000:]}")


def test_kill_9_under_load_loses_no_completed_response(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    gw, server = start_gateway(tmp_path, upstream, {"durability": "sync"})
    server.stop()  # the config, keys and policies are what we wanted; serve it as a process
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    proc = _serve(tmp_path / "gateway.yaml", port, tmp_path / "gateway.log")
    stop, done = threading.Event(), []
    workers = _load(base, gw.analyst_key, stop, done)
    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    for w in workers:
        w.join()
    streams = {d.split()[0] for d in done if d.endswith(" stream")}
    completed = {d.split()[0] for d in done}
    assert len(completed) > 50 and len(streams) > 20, "too little load to mean anything"
    proc = _serve(tmp_path / "gateway.yaml", port, tmp_path / "gateway.log")  # restart
    try:
        with sqlite3.connect(gw.db) as db:
            stored = {r[0] for r in db.execute("SELECT request_id FROM audit_records")}
    finally:
        proc.terminate()
        proc.wait(10)
    assert completed - stored == set()
    assert (tmp_path / "audit.db").exists()


def test_postgres_stopped_mid_load_loses_nothing(upstream: FakeUpstream, tmp_path: Path) -> None:
    pg = PrivatePostgres()
    pg.start()
    try:
        gw, server = start_gateway(
            tmp_path, upstream, {"durability": "sync"}, stores={"audit_url": pg.url}
        )
        try:
            stop, done = threading.Event(), []
            workers = _load(gw.url, gw.analyst_key, stop, done, threads=4)
            time.sleep(0.7)
            pg.stop()
            during = len(done)
            time.sleep(1.0)  # requests go on: their records are spooled, fsync'd
            assert len(done) > during + 10, "requests stopped while the sink was down"
            assert (tmp_path / "audit-spool" / "audit-spool.jsonl").exists()
            pg.start()
            time.sleep(0.7)
            stop.set()
            for w in workers:
                w.join()
            completed = [d.split()[0] for d in done]
            deadline = time.monotonic() + 10
            while (
                tmp_path / "audit-spool" / "audit-spool.jsonl"
            ).exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not (tmp_path / "audit-spool" / "audit-spool.jsonl").exists(), (
                "spool not replayed"
            )
        finally:
            server.stop()

        async def check() -> None:
            db = await asyncpg.connect(pg.url)
            try:
                rows = await db.fetch("SELECT request_id FROM audit.records ORDER BY seq")
            finally:
                await db.close()
            ids = [r[0] for r in rows]
            assert len(ids) == len(set(ids)), "a record was written twice"
            assert set(completed) - set(ids) == set()
            report = await verified(PostgresSink(pg.url, "audit", Chain(None)))
            assert report.ok, report

        asyncio.run(check())
    finally:
        pg.destroy()


@pytest.mark.parametrize("on_failure", ["block", "allow"])
def test_sink_and_spool_both_down(upstream: FakeUpstream, tmp_path: Path, on_failure: str) -> None:
    (tmp_path / "not-a-dir").write_text("a file where the spool folder should be")
    gw, server = start_gateway(
        tmp_path, upstream, {"on_failure": on_failure, "spool_dir": "not-a-dir/spool"},
        stores={"audit_url": "postgresql://postgres@127.0.0.1:1/nothing"},
    )  # fmt: skip
    try:
        request = urllib.request.Request(
            f"{gw.openai_url()}/chat/completions", data=BODY,
            headers={"authorization": f"Bearer {gw.analyst_key}", "content-type": "application/json"},
        )  # fmt: skip
        stream = gw.openai().chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
        )  # type: ignore[arg-type]
        if on_failure == "allow":
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
            assert "hi" in "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            return
        with pytest.raises(HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 503
        assert orjson.loads(caught.value.read())["error"]["code"] == "audit.unavailable"
        # A stream's deltas are already out; its end is withheld: an error, never [DONE].
        with pytest.raises(openai.APIError, match="could not be recorded"):
            list(stream)
    finally:
        server.stop()


def test_async_mode_writes_everything_by_a_clean_stop(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    gw, server = start_gateway(tmp_path, upstream, {"durability": "async", "max_delay_ms": 50})
    try:
        ids = [_post(gw.url, gw.analyst_key) for _ in range(30)]
    finally:
        server.stop()  # the writer drains its queue before the sink closes
    assert None not in ids
    with sqlite3.connect(gw.db) as db:
        stored = [r[0] for r in db.execute("SELECT request_id FROM audit_records ORDER BY seq")]
    assert stored == ids  # all of them, once each, in the order they finished
