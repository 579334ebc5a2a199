"""No request starves the others: while 4 MB bodies built to be slow to scan arrive back to back,
a small request is still answered promptly, and a body too costly to scan is refused within a
bounded CPU time (issue 23; the figures on this machine are in docs/performance.md).

``gateway serve`` runs as its own process (the test's threads would otherwise share its GIL),
under a policy that masks the built-in entities, so every body is scanned. The bounds here
leave a loaded 2-core CI machine its margin; they still fail by far if the scan stops yielding
(a 4 MB scan holds the loop for 0.3-1 s of CPU: the probe then waits seconds).
"""

from __future__ import annotations

import http.client
import os
import random
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import gateway_config
from tests.fakes.upstream import FakeUpstream
from tests.hardening.conftest import free_port, gateway_process
from tests.support.server import new_key, write_yaml

ENTITIES = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS",
            "SECRET"]  # fmt: skip
SMALL = orjson.dumps(
    {"model": "mock-model", "messages": [{"role": "user", "content": "Hello, how are you?"}]}
)


@dataclass
class Served:
    url: str
    host: str
    port: int
    key: str
    process: subprocess.Popen[bytes]

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def post(self, body: bytes) -> httpx.Response:
        return httpx.post(
            f"{self.url}/w/scanned/v1/chat/completions",
            content=body,
            headers={"authorization": f"Bearer {self.key}", "content-type": "application/json"},
            timeout=60,
        )

    def connect(self) -> Callable[[bytes], int]:
        """A keep-alive connection's send: the status of each body sent. http.client reads
        in C with the GIL released, so the attacking thread does not slow the probing one."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        headers = {"authorization": f"Bearer {self.key}", "content-type": "application/json"}

        def send(body: bytes) -> int:
            conn.request("POST", "/w/scanned/v1/chat/completions", body, headers)
            answer = conn.getresponse()
            answer.read()
            return answer.status

        return send


@pytest.fixture(scope="module")
def served(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("fairness")
    port = free_port()
    config = {
        **gateway_config(upstream),
        "listen": {"host": "127.0.0.1", "port": port},
        "max_body_bytes": 8 * 1024 * 1024,
    }
    path = write_yaml(root / "gateway.yaml", config)
    policy = {
        "workflow": "scanned",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["mock-model"]},
        "data": {"entities": dict.fromkeys(ENTITIES, "mask")},
    }
    write_yaml(root / "policies" / "scanned.yaml", policy)
    key = new_key(root / "keys.yaml", "alice", ["analyst"])
    url = f"http://127.0.0.1:{port}"
    with gateway_process(path, port) as process:
        yield Served(url, "127.0.0.1", port, key, process)


def _parts(unit: str, seed: int) -> bytes:
    """About 4 MB as 250 distinct parts of 16 KB (an index every 2 KB defeats the cache)."""
    parts = []
    for i in range(250):
        mark = f" {seed:03d}{i:04d} "
        piece = (unit * (2048 // len(unit) + 1))[: 2048 - len(mark)] + mark
        parts.append({"type": "text", "text": piece * 8})
    return orjson.dumps({"model": "mock-model", "messages": [{"role": "user", "content": parts}]})


def _random_parts(alphabet: str, seed: int) -> bytes:
    rng = random.Random(seed)
    parts = [{"type": "text", "text": "".join(rng.choices(alphabet, k=16384))} for _ in range(250)]
    return orjson.dumps({"model": "mock-model", "messages": [{"role": "user", "content": parts}]})


def test_a_small_request_is_answered_promptly_while_hostile_bodies_are_scanned(
    served: Served,
) -> None:
    bodies = [_parts("@", 1), _random_parts("0123456789", 2), _parts(".", 3)]
    stop = threading.Event()
    scanned: list[int] = []

    def attack() -> None:
        send = served.connect()
        while not stop.is_set():
            for body in bodies:
                scanned.append(send(body))

    probe = served.connect()
    alone = []
    for _ in range(50):
        started = time.perf_counter()
        assert probe(SMALL) == 200
        alone.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    attacker = threading.Thread(target=attack)
    attacker.start()
    latencies: list[float] = []
    try:
        time.sleep(0.5)  # the first body is being scanned
        ends = time.monotonic() + 6
        while time.monotonic() < ends or len(scanned) < 3:
            started = time.perf_counter()
            assert probe(SMALL) == 200
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)
    finally:
        stop.set()
        attacker.join(timeout=120)
    print(f"probe alone: p50 {statistics.median(alone):.1f} ms")
    cuts = statistics.quantiles(latencies, n=20)
    print(f"probe under attack: p50 {cuts[9]:.1f} ms, p95 {cuts[18]:.1f} ms, {len(latencies)}")
    assert set(scanned) <= {200, 413, 502}, scanned  # 502: the echoed answer over budget
    # Measured with the machine loaded by other test runs (load 13 on 2 cores): p50 96 ms,
    # p95 157 ms; with the scan not yielding (SLICE_S raised to 1000 s), p50 3.9 s, p95 5.7 s.
    # An idle machine: see bench/hostile.py. The margin is for a loaded CI machine.
    assert cuts[9] < 300
    assert cuts[18] < 1000


def test_a_body_too_costly_to_scan_is_refused_within_bounded_cpu(served: Served) -> None:
    dense = _parts("10.1.2.3 ", 4)  # half a million IP addresses
    cpu = served.cpu_s()
    answer = served.post(dense)
    spent = served.cpu_s() - cpu
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "boundary.too_costly"
    assert "too long to inspect" in answer.json()["error"]["message"]
    # The scan stops at server.max_scan_cpu_s (0.75 s); parsing and answering add little.
    assert spent < 1.5, spent
    assert served.post(SMALL).status_code == 200
