"""A Redis that stops answering (SIGSTOP: connections open, nothing read) costs a request its
store's bound, never seconds: the breaker's 50 ms, then it fails open on the circuit's last
known state; the limits' and the vault's 250 ms, then their fail-closed 503. Measured through
a real gateway under load, with the defaults of gateway.yaml; then Redis thaws and every path
recovers. A private redis-server is frozen, never the shared one.

Before the one factory, the same freeze cost a plain request 10 s (two 5 s breaker calls) and
a tokenizing request 5 s; the bound asserted here is 1 s, to stay quiet on a busy 2-core CI
machine. The measured numbers are printed (``pytest -s``).
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import UPSTREAM_KEYS, gateway_config
from tests.fakes.upstream import FakeUpstream
from tests.support.clients import openai_client
from tests.support.privateredis import PrivateRedis
from tests.support.server import GatewayServer, new_key, write_yaml

BOUND_S = 1.0  # the defaults are 50 ms and 250 ms; a loaded CI machine adds its own delays
EMAIL = "jane.doe@acme-corp.com"
LOADERS = 3


def _policy(name: str, **sections: object) -> dict[str, object]:
    return {
        "workflow": name,
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["gpt-test"], "max_output_tokens": 50},
        "upstream": {"timeout_s": 5, "retries": 0},
        **sections,
    }


POLICIES = {
    # Only the breaker (two script calls per attempt) reaches Redis.
    "plain": _policy("plain"),
    # The vault stores each token minted: no vault, no request (fail closed).
    "tokens": _policy("tokens", data={"entities": {"EMAIL_ADDRESS": "tokenize"}}),
    # A rate limit, blocking while its store is unreachable (the default).
    "limited": _policy(
        "limited", limits={"rate": [{"per": "user", "requests_per_minute": 100_000}]}
    ),
}


@dataclass
class Frozen:
    url: str
    key: str
    redis: PrivateRedis

    def client(self, workflow: str) -> openai.OpenAI:
        return openai_client(
            base_url=f"{self.url}/w/{workflow}/v1", api_key=self.key, max_retries=0, timeout=30
        )


@pytest.fixture
def frozen(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Frozen]:
    private = PrivateRedis()
    private.start()
    config = {
        **gateway_config(upstream),
        "stores": {"redis_url": private.url},  # every bound at its default
        "breaker": {"enabled": True},
        "audit": {"purge_interval_s": 0},
    }
    path = write_yaml(tmp_path / "gateway.yaml", config)
    for name, policy in POLICIES.items():
        write_yaml(tmp_path / "policies" / f"{name}.yaml", policy)
    key = new_key(tmp_path / "keys.yaml", "alice", ["analyst"])
    server = GatewayServer(path, {**UPSTREAM_KEYS, "GATEWAY_VAULT_KEY": "v" * 32}).start()
    try:
        yield Frozen(server.url, key, private)
    finally:
        private.thaw()
        server.stop()
        private.destroy()


def _load(gw: Frozen, stop: threading.Event, statuses: list[int]) -> None:
    """Plain requests back to back until ``stop``: the traffic the freeze lands in."""
    with httpx.Client(timeout=30) as http:
        while not stop.is_set():
            r = http.post(
                f"{gw.url}/w/plain/v1/chat/completions",
                headers={"authorization": f"Bearer {gw.key}"},
                json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
            )
            statuses.append(r.status_code)


def _timed(call: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    try:
        result: object = call()
    except openai.APIStatusError as exc:
        result = exc
    return time.perf_counter() - started, result


def _plain(gw: Frozen) -> Callable[[], object]:
    messages = [{"role": "user", "content": "hi"}]
    return lambda: gw.client("plain").chat.completions.create(
        model="gpt-test",
        messages=messages,  # type: ignore[arg-type]
    )


def _tokenizing(gw: Frozen) -> Callable[[], object]:
    messages = [{"role": "user", "content": f"mail {EMAIL}"}]
    return lambda: gw.client("tokens").chat.completions.create(
        model="gpt-test",
        messages=messages,  # type: ignore[arg-type]
    )


def _limited(gw: Frozen) -> Callable[[], object]:
    messages = [{"role": "user", "content": "hi"}]
    return lambda: gw.client("limited").chat.completions.create(
        model="gpt-test",
        messages=messages,  # type: ignore[arg-type]
    )


def _ms(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"


Times = dict[str, list[float]]
CODES = {"tokens": "boundary.vault_unavailable", "limited": "limits.store_unavailable"}


def test_a_frozen_redis_costs_each_request_its_bound_and_recovers(
    frozen: Frozen, caplog: pytest.LogCaptureFixture
) -> None:
    gw = frozen
    caplog.set_level(logging.WARNING, logger="gateway.upstream")
    calls = {"plain": _plain(gw), "tokens": _tokenizing(gw), "limited": _limited(gw)}
    stop, load_statuses = threading.Event(), list[int]()
    loaders = [
        threading.Thread(target=_load, args=(gw, stop, load_statuses), daemon=True)
        for _ in range(LOADERS)
    ]
    for loader in loaders:
        loader.start()
    try:
        normal, frozen_times, during, thawed = _measure(gw, calls, load_statuses)
        recovered = _recover(calls)
    finally:
        stop.set()
        for loader in loaders:
            loader.join(timeout=30)

    print("\nRedis frozen with SIGSTOP under load, default bounds (breaker 50 ms, else 250 ms):")
    for name in calls:
        print(f"  {name:8} normal: {_ms(normal[name])}; frozen: {_ms(frozen_times[name])}")
    print(f"  every path answered normally again {recovered * 1000:.0f} ms after the thaw")

    for name, times in frozen_times.items():
        assert max(times) < BOUND_S, (name, times)
    assert set(load_statuses) == {200}  # the plain traffic never failed ...
    assert during < len(load_statuses)  # ... and kept flowing while Redis was frozen
    # An outage is one warning, not one per request, and its end one more; the freeze was one
    # (on a loaded machine Redis may also miss the breaker's 50 ms once before it: another).
    said = [
        r
        for r in caplog.records
        if r.name == "gateway.upstream" and "breaker store" in r.getMessage()
    ]
    kinds = ["down" if "unavailable" in r.getMessage() else "up" for r in said]
    assert kinds and kinds == ["down", "up"] * (len(kinds) // 2), kinds
    outages = [(said[i].created, said[i + 1].created) for i in range(0, len(said), 2)]
    assert any(down <= thawed < up for down, up in outages), (outages, thawed)


def _measure(
    gw: Frozen, calls: dict[str, Callable[[], object]], load_statuses: list[int]
) -> tuple[Times, Times, int, float]:
    """Each kind of request, timed before and during the freeze (asserting its outcome); how
    many loader requests had been answered when the measuring ended; when Redis thawed."""
    normal: Times = {name: [] for name in calls}
    for _ in range(10):
        for name, call in calls.items():
            took, result = _timed(call)
            assert not isinstance(result, Exception), (name, result)
            normal[name].append(took)
    frozen: Times = {name: [] for name in calls}
    gw.redis.freeze()
    try:
        for _ in range(10):
            for name, call in calls.items():
                took, result = _timed(call)
                frozen[name].append(took)
                if name == "plain":  # the breaker fails open
                    assert not isinstance(result, Exception), result
                    continue
                assert isinstance(result, openai.APIStatusError), (name, result)
                assert (result.status_code, result.code) == (503, CODES[name])
        during = len(load_statuses)
        time.sleep(0.3)  # the loaders keep asking while Redis stays frozen
    finally:
        gw.redis.thaw()
        thawed = time.time()  # the clock of log records' ``created``
    return normal, frozen, during, thawed


def _recover(calls: dict[str, Callable[[], object]]) -> float:
    """Seconds until every kind of request succeeds again; then one more plain request past
    the breaker's back-off, which finds the store again."""
    started = time.perf_counter()
    for name, call in calls.items():
        while True:
            _, result = _timed(call)
            if not isinstance(result, Exception):
                break
            assert time.perf_counter() - started < 10, (name, result)
            time.sleep(0.05)
    recovered = time.perf_counter() - started
    time.sleep(1.1)  # breaker.store_backoff_ms
    _timed(calls["plain"])
    return recovered
