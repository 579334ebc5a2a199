"""Two gateway processes sharing one PROMETHEUS_MULTIPROC_DIR: a scrape of either one counts
every request both served (what ``gateway serve --workers N`` relies on)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.observe.conftest import POLICIES, observed_config, samples, value
from tests.support.server import new_key, write_yaml


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(config: Path, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            "--log-format",
            "json",
        ],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "gateway exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("gateway did not start")


@pytest.fixture
def two_gateways(tmp_path: Path) -> Iterator[tuple[list[str], str, list[subprocess.Popen[bytes]]]]:
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    urls, procs = [], []
    key = ""
    for i in range(2):
        root = tmp_path / f"gw{i}"
        config = write_yaml(root / "gateway.yaml", observed_config())
        for name, policy in POLICIES.items():
            write_yaml(root / "policies" / f"{name}.yaml", policy)
        if i == 0:
            key = new_key(root / "keys.yaml", "alice", ["analyst"])
        else:
            (root / "keys.yaml").write_bytes((tmp_path / "gw0" / "keys.yaml").read_bytes())
        port = _free_port()
        procs.append(_serve(config, port, env, tmp_path / f"gw{i}.log"))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, proc in zip(urls, procs, strict=True):
            _wait_ready(url, proc)
        yield urls, key, procs
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def test_a_scrape_of_one_process_counts_both(
    two_gateways: tuple[list[str], str, list[subprocess.Popen[bytes]]],
) -> None:
    urls, key, procs = two_gateways
    body = {"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {key}"}
    sent = {urls[0]: 7, urls[1]: 5}
    for url, n in sent.items():
        for _ in range(n):
            r = httpx.post(f"{url}/w/notes/v1/chat/completions", json=body, headers=headers)
            assert r.status_code == 200, r.text

    def total(url: str) -> float:
        scraped = samples(httpx.get(f"{url}/metrics").text)
        return value(scraped, "gateway_requests_total", workflow="notes", decision="allow")

    # the other process flushes its counts within a second
    deadline = time.monotonic() + 10
    while total(urls[0]) != 12 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert total(urls[0]) == 12
    assert total(urls[1]) == 12
    # a worker that stopped keeps its counts in the totals
    procs[1].terminate()
    procs[1].wait(timeout=10)
    assert total(urls[0]) == 12
