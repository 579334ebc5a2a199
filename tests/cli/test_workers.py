"""``gateway serve --workers N``: one port, N processes, each serving; the SQLite audit trail
stays one chain; state that would be per process is refused with the setting to change."""

from __future__ import annotations

import collections
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import httpx2
import pytest
import yaml
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from uvicorn.config import STARTUP_FAILURE

from gateway.app import create_app
from gateway.audit.spool import Spool
from gateway.cli import main
from gateway.config import load_config
from gateway.yamlsource import ConfigError
from tests.audit.conftest import record
from tests.conftest import POLICIES, UPSTREAM_KEYS, gateway_config
from tests.fakes.upstream import FakeUpstream
from tests.limits.conftest import REDIS_URL
from tests.support.clients import openai_client
from tests.support.process import free_port, kill_group, serve, start_serve
from tests.support.server import new_key, write_yaml

MOCK_ONLY = {
    "workflow": "chat_app",
    "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["mock-model"]},
    "data": {"entities": {"EMAIL_ADDRESS": "mask"}},
}


def _write(root: Path, upstream: FakeUpstream, policies: dict[str, object]) -> Path:
    config = {**gateway_config(upstream), "audit": {"purge_interval_s": 0}}
    path = write_yaml(root / "gateway.yaml", config)
    for name, policy in policies.items():
        write_yaml(root / "policies" / f"{name}.yaml", policy)
    return path


def _loaded_at(url: str) -> float:
    """When the worker that took this (new) connection loaded its policies: one per process."""
    with urllib.request.urlopen(f"{url}/readyz", timeout=5) as answer:
        return float(json.loads(answer.read())["policy_set"]["loaded_at"])


def _requests_counted(url: str) -> float:
    """``gateway_requests_total`` of chat_app in one scrape, on a new connection."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_requests_total" and sample.labels.get("workflow") == "chat_app"
    )


def _audit_verify(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), "audit", "verify"],
        capture_output=True, text=True, timeout=60, env={**UPSTREAM_KEYS},
    )  # fmt: skip


def test_two_workers_serve_one_port_and_keep_one_audit_chain(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    config = _write(tmp_path, upstream, {"chat_app": MOCK_ONLY})
    key = new_key(tmp_path / "keys.yaml", "alice", ["analyst"])
    proc, url = serve(config, tmp_path / "gw.log", "--workers", "2", env=UPSTREAM_KEYS)
    try:
        workers: set[float] = set()
        deadline = time.monotonic() + 20
        while len(workers) < 2 and time.monotonic() < deadline:
            workers.add(_loaded_at(url))
        assert len(workers) == 2, "the second worker never answered"

        client = openai_client(base_url=f"{url}/w/chat_app/v1", api_key=key, max_retries=0)
        failures: list[BaseException] = []

        def calls() -> None:
            try:
                for _ in range(15):
                    answer = client.chat.completions.create(
                        model="mock-model",
                        messages=[{"role": "user", "content": "mail bob@example.com"}],
                    )
                    assert "bob@example.com" not in (answer.choices[0].message.content or "")
            except Exception as exc:  # noqa: BLE001 - reported below, in the test's thread
                failures.append(exc)

        threads = [threading.Thread(target=calls) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not failures, failures
        # No PROMETHEUS_MULTIPROC_DIR given: serve gives the workers one, so a scrape of
        # either worker counts all 120 requests (each worker flushes within a second).
        assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
        deadline, totals = time.monotonic() + 10, [0.0]
        while time.monotonic() < deadline:
            totals = [_requests_counted(url) for _ in range(6)]  # new connections: both workers
            if totals == [120.0] * 6:
                break
            time.sleep(0.2)
        assert totals == [120.0] * 6, totals
        # Both workers hold a spool slot for their whole life.
        assert (tmp_path / "audit-spool" / "audit-spool.0.lock").exists()
        assert (tmp_path / "audit-spool" / "audit-spool.1.lock").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0  # the workers drained and the supervisor exited
    verify = _audit_verify(config)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("ok: 120 record(s) verified"), verify.stdout


LIMITED = {"limits": {"rate": [{"per": "workflow", "requests_per_minute": 10}]}}
TOKENIZED = {"data": {"entities": {"EMAIL_ADDRESS": "tokenize"}}}


@pytest.mark.parametrize(("uses", "section"), [("limits", LIMITED), ("tokenize", TOKENIZED)])
def test_per_process_state_is_refused_naming_the_setting(
    upstream: FakeUpstream, tmp_path: Path, uses: str, section: dict[str, object]
) -> None:
    config = _write(tmp_path, upstream, {"chat_app": {**POLICIES["chat_app"], **section}})
    create_app(load_config(config, {}), {}, workers=1)  # one process: fine
    with pytest.raises(ConfigError) as refused:
        create_app(load_config(config, {}), {}, workers=2)
    text = str(refused.value)
    assert "set stores.redis_url" in text
    assert "workflow 'chat_app' uses" in text
    assert ("tokenize" in text) == (uses == "tokenize")
    with_redis = {**yaml.safe_load(config.read_text()), "stores": {"redis_url": REDIS_URL}}
    write_yaml(config, with_redis)
    create_app(load_config(config, {}), {"GATEWAY_VAULT_KEY": "k" * 32}, workers=2)


def test_serve_exits_2_when_workers_cannot_start(upstream: FakeUpstream, tmp_path: Path) -> None:
    config = _write(tmp_path, upstream, {"chat_app": {**POLICIES["chat_app"], **LIMITED}})
    log = tmp_path / "gw.log"
    proc = start_serve(config, log, "--workers", "2", env=UPSTREAM_KEYS, port=free_port())
    try:
        assert proc.wait(timeout=60) == 2
    finally:
        kill_group(proc)
    assert "set stores.redis_url" in log.read_text()


def test_a_policy_reloaded_later_is_refused_not_limited_per_process(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Start-up saw no limits; a reload brings some: refused, although on_store_error says allow."""
    config = _write(tmp_path, upstream, {"chat_app": MOCK_ONLY})
    key = new_key(tmp_path / "keys.yaml", "alice", ["analyst"])
    admin = new_key(tmp_path / "keys.yaml", "root", ["admin"])
    app = create_app(load_config(config, {}), {}, workers=2)
    body = {"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]}
    path = "/w/chat_app/v1/chat/completions"
    with TestClient(app) as client:
        auth = {"authorization": f"Bearer {key}"}
        assert client.post(path, json=body, headers=auth).status_code == 200
        limited = {**MOCK_ONLY, "limits": {**LIMITED["limits"], "on_store_error": "allow"}}
        write_yaml(tmp_path / "policies" / "chat_app.yaml", limited)
        reload = client.post("/admin/policies/reload", headers={"authorization": f"Bearer {admin}"})
        assert reload.status_code == 200, reload.text
        refused = client.post(path, json=body, headers=auth)
        assert refused.status_code == 503
        assert refused.headers["x-gateway-decision"].endswith("limits.store_unavailable")


def test_workers_argument_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as bad:
        main(["serve", "--workers", "0"])
    assert bad.value.code == 2
    assert "a number of at least 1, or auto" in capsys.readouterr().err


def test_spool_slots_are_claimed_once_and_orphans_are_adopted(tmp_path: Path) -> None:
    first, second = Spool.claim(tmp_path), Spool.claim(tmp_path)
    assert (first.path.name, second.path.name) == ("audit-spool.jsonl", "audit-spool.1.jsonl")
    second.append([record(1), record(2)])
    second.release()  # its worker is gone; the next to start takes its records over
    third = Spool.claim(tmp_path)
    assert third.path == second.path  # the free slot, taken again
    assert [r.request_id for r in third.read()] == ["req000001", "req000002"]
    third.release()
    Spool(tmp_path, 3).append([record(3)])  # a slot above the worker count, after N was lowered
    fourth = Spool.claim(tmp_path)
    assert fourth.path == second.path
    assert not Spool(tmp_path, 3).pending
    assert [r.request_id for r in fourth.read()] == ["req000001", "req000002", "req000003"]


def test_workers_without_a_vault_key_write_the_same_keyed_placeholders(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``GATEWAY_VAULT_KEY``: the supervisor draws one key for all workers, so a value
    masks to the same text whichever worker takes the connection."""
    monkeypatch.delenv("GATEWAY_VAULT_KEY", raising=False)
    config = _write(tmp_path, upstream, {"chat_app": MOCK_ONLY})
    key = new_key(tmp_path / "keys.yaml", "alice", ["analyst"])
    env = {k: v for k, v in UPSTREAM_KEYS.items() if k != "GATEWAY_VAULT_KEY"}
    proc, url = serve(config, tmp_path / "gw.log", "--workers", "2", env=env)
    body = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": "mail bob@example.com"}],
    }
    seen: dict[float, str] = {}  # worker (when it loaded its policies) -> what it answered
    try:
        deadline = time.monotonic() + 20
        while len(seen) < 2 and time.monotonic() < deadline:
            with httpx2.Client(base_url=url, timeout=10) as one_connection:
                worker = float(one_connection.get("/readyz").json()["policy_set"]["loaded_at"])
                answer = one_connection.post(
                    "/w/chat_app/v1/chat/completions",
                    json=body,
                    headers={"authorization": f"Bearer {key}"},
                )
                seen[worker] = answer.json()["choices"][0]["message"]["content"]
        assert len(seen) == 2, "the second worker never answered"
        first, second = seen.values()
        assert re.search(r"<EMAIL_ADDRESS_[a-z2-7]{6}>", first), first
        assert first == second
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def _workers_of(connections: list[http.client.HTTPConnection]) -> list[float]:
    """The worker behind each open connection, named by when it loaded its policies."""
    found = []
    for conn in connections:
        conn.request("GET", "/readyz")
        found.append(float(json.loads(conn.getresponse().read())["policy_set"]["loaded_at"]))
    return found


def test_connections_opened_at_once_are_spread_over_the_workers(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Each worker listens on a socket of its own (SO_REUSEPORT): the kernel spreads new
    connections by their address. On one shared socket the first worker awake took them all
    (3 of 64 for the other, bench/workers.py), a load balancer's keep-alive pool included."""
    config = _write(tmp_path, upstream, {"chat_app": MOCK_ONLY})
    proc, url = serve(config, tmp_path / "gw.log", "--workers", "2", env=UPSTREAM_KEYS)
    port = int(url.rsplit(":", 1)[1])
    try:
        time.sleep(1.0)  # both workers up, not only the first to answer
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(64)]
        for conn in connections:
            conn.connect()  # all at once, as a pool opens
        per_worker = collections.Counter(_workers_of(connections))
        for conn in connections:
            conn.close()
        assert len(per_worker) == 2, per_worker
        assert min(per_worker.values()) >= 16, per_worker  # binomial(64, 1/2): 4 sd below
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_a_worker_that_dies_is_replaced_on_its_socket_and_no_connection_is_reset(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """The supervisor holds each worker's socket: connections the kernel hands to a dead
    worker's socket wait in its backlog for the replacement instead of being refused."""
    config = _write(tmp_path, upstream, {"chat_app": MOCK_ONLY})
    proc, url = serve(config, tmp_path / "gw.log", "--workers", "2", env=UPSTREAM_KEYS)
    port = int(url.rsplit(":", 1)[1])
    try:
        time.sleep(1.0)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        workers = [
            int(p) for p in children if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        before = set(
            _workers_of(
                [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(16)]
            )
        )
        assert len(workers) == 2, children
        os.kill(workers[1], signal.SIGKILL)
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(32)]
        after = collections.Counter(_workers_of(connections))  # every one answered
        assert len(before) == 2 and len(after) == 2, (before, after)
        assert len(set(after) - before) == 1  # the dead worker's slot, served by its successor
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_serve_refuses_a_port_another_process_listens_on(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """SO_REUSEPORT would share the port with another process of the same user: the
    supervisor checks the address is free first, and fails as one worker does."""
    config = _write(tmp_path, upstream, {"chat_app": MOCK_ONLY})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = tmp_path / "gw.log"
        proc = start_serve(config, log, "--workers", "2", env=UPSTREAM_KEYS, port=port)
        try:
            assert proc.wait(timeout=60) == STARTUP_FAILURE
        finally:
            kill_group(proc)
    assert "Address already in use" in log.read_text()
