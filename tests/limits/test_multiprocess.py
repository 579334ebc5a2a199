"""Two gateway processes sharing one Redis, under concurrent load from many SDK clients:
the admitted count equals the limit exactly, spend never passes the budget, and errors,
timeouts and clients leaving mid-stream leave no reservation behind."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import openai
import pytest
import redis

from tests.conftest import UPSTREAM_KEYS
from tests.fakes.upstream import CutStream, FakeUpstream, SlowStream, Stall, Status
from tests.limits.conftest import (
    PRICED,
    REDIS_URL,
    VAULT_KEY,
    _policy,
    drop_keys,
    new_prefix,
    write_gateway,
)
from tests.support.clients import openai_client
from tests.support.process import serve_many

FAULTS = ("fail", "stall", "cut", "slow", "gone")  # one model per misbehaviour
MODELS: dict[str, dict[str, object]] = {
    **PRICED,
    **{f"gpt-{kind}": {**PRICED["gpt-test"], "upstream_model": f"{kind}-up"} for kind in FAULTS},
}
PROMPT = [{"role": "user", "content": " ".join(["w"] * 60)}]  # the fake counts 60 tokens
COST = 60 * 1 + 61 * 2  # micro-USD: 60 in, "echo: w w ..." 61 out


def _policies() -> dict[str, dict[str, object]]:
    faults = _policy("faults", {"budget": [{"per": "workflow", "usd_per_day": 1.0}]}, max_out=100)
    faults["access"]["models"] = [f"gpt-{k}" for k in FAULTS]  # type: ignore[index]
    faults["upstream"] = {"timeout_s": 0.5, "retries": 0}
    return {
        "shared_rate": _policy(
            "shared_rate", {"rate": [{"per": "workflow", "requests_per_hour": 40}]}
        ),
        "shared_budget": _policy(
            "shared_budget", {"budget": [{"per": "workflow", "usd_per_day": 0.005}]}
        ),
        "faults": faults,
    }


class Pair:
    def __init__(self, urls: list[str], keys: list[str], prefix: str) -> None:
        self.urls, self.keys, self.prefix = urls, keys, prefix
        self.redis = redis.Redis.from_url(REDIS_URL)

    def client(self, i: int, workflow: str, **kw: float) -> openai.OpenAI:
        """Client ``i``: its own key, and every other client on the other gateway."""
        return openai_client(
            base_url=f"{self.urls[i % 2]}/w/{workflow}/v1",
            api_key=self.keys[i % len(self.keys)],
            max_retries=0,
            **kw,  # type: ignore[arg-type]
        )

    def budget(self, workflow: str) -> tuple[int, int]:
        day = datetime.now(UTC).strftime("%Y%m%d")
        key = f"{{{self.prefix}:lim:{workflow}}}:{workflow}:usd:day:{day}:workflow:*"
        spent, reserved = self.redis.hmget(key, "s", "r")
        return int(spent or 0), int(reserved or 0)


@pytest.fixture(scope="module")
def pair(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("limits-pair")
    prefix = new_prefix()
    config, keys = write_gateway(
        root,
        upstream,
        prefix,
        REDIS_URL,
        _policies(),
        callers=16,
        models=MODELS,
        store_timeout_ms=5000,
    )
    env = {**UPSTREAM_KEYS, "GATEWAY_VAULT_KEY": VAULT_KEY}
    procs = serve_many(config, [root / "gw0.log", root / "gw1.log"], env=env)
    try:
        yield Pair([url for _, url in procs], keys, prefix)
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait(timeout=10)
        asyncio.run(drop_keys(prefix))


def _hammer(clients: int, per_client: int, one: Callable[[int], str]) -> Counter[str]:
    """``clients`` threads each making ``per_client`` calls of ``one``, all started together."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def run(i: int) -> None:
        start.wait()
        for _ in range(per_client):
            outcome = one(i)
            with lock:
                outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def test_admitted_requests_equal_the_limit_exactly(pair: Pair) -> None:
    """40 per hour for the whole workflow, 96 requests from 16 clients over two processes."""

    def one(i: int) -> str:
        try:
            pair.client(i, "shared_rate").chat.completions.create(model="gpt-test", messages=PROMPT)
        except openai.RateLimitError as exc:
            return str(exc.code)
        return "ok"

    outcomes = _hammer(16, 6, one)
    assert outcomes == Counter({"ok": 40, "limits.rate_exceeded": 56})


def test_spend_never_passes_the_budget(pair: Pair) -> None:
    """5000 micro-USD; each call reserves 260 and spends 182; no reservation may be left."""

    def one(i: int) -> str:
        try:
            pair.client(i, "shared_budget").chat.completions.create(
                model="gpt-test", messages=PROMPT
            )
        except openai.RateLimitError as exc:
            return str(exc.code)
        return "ok"

    outcomes = _hammer(16, 6, one)
    spent, reserved = pair.budget("shared_budget")
    assert reserved == 0
    assert spent == outcomes["ok"] * COST  # every admitted call settled once, at its real cost
    assert spent <= 5000
    # Used, not refused wholesale (how much depends on how many were in flight at once).
    assert outcomes["ok"] >= 10
    assert outcomes["ok"] + outcomes["limits.budget_exhausted"] == 96


def test_errors_timeouts_and_disconnects_leave_no_reservation(
    pair: Pair, upstream: FakeUpstream
) -> None:
    n = 4  # calls per kind, each on its own client thread
    upstream.script("fail-up", *[Status(500)] * n)
    upstream.script("stall-up", *[Stall(2.0)] * n)  # past the policy's 0.5 s deadline
    upstream.script("cut-up", *[CutStream(after=2)] * n)
    upstream.script("slow-up", *[SlowStream(events=100, interval=0.05)] * n)
    upstream.script("gone-up", *[Stall(0.8)] * n)  # the client gives up at 0.2 s

    def one(i: int) -> str:
        kind = FAULTS[i % len(FAULTS)]
        model = f"gpt-{kind}"
        client = pair.client(i, "faults", timeout=0.2 if kind == "gone" else 5.0)
        try:
            if kind in ("cut", "slow"):
                with client.chat.completions.create(
                    model=model, messages=PROMPT, stream=True
                ) as stream:
                    for j, _ in enumerate(stream):
                        if kind == "slow" and j == 2:
                            break  # the client leaves mid-stream
                return f"{kind}:left" if kind == "slow" else f"{kind}:ended"
            client.chat.completions.create(model=model, messages=PROMPT)
        except openai.APIStatusError as exc:
            return f"{kind}:{exc.status_code}"
        except openai.APIConnectionError:  # the client's own timeout
            return f"{kind}:conn"
        except openai.APIError:  # the gateway's in-stream error event: the upstream cut
            return f"{kind}:stream_error"
        return f"{kind}:ok"

    outcomes = _hammer(len(FAULTS) * n, 1, one)
    assert outcomes["fail:502"] == outcomes["stall:504"] == outcomes["slow:left"] == n, outcomes
    assert outcomes["gone:conn"] == n, outcomes
    assert outcomes["cut:stream_error"] == n, outcomes

    deadline = time.monotonic() + 5  # the cut clients' gateways finish after they leave
    while pair.budget("faults")[1] and time.monotonic() < deadline:
        time.sleep(0.05)
    spent, reserved = pair.budget("faults")
    assert reserved == 0
    # Failures before any answer cost nothing; the rest paid at most their reservation.
    assert 0 < spent <= 3 * n * (60 + 16 + 4 + 200)
