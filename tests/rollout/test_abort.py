"""Automatic abort on live servers: two instances sharing Redis run a canary identical in
behaviour to live under random traffic for many windows and never abort; then the upstream
starts failing, which only the candidate (it dropped the retries) lets through, and both
instances drop the canary to 0% within the window, agreeing on why, recorded once."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson

from gateway.review.webhook import sign
from tests.fakes.upstream import FakeUpstream, Reply, Status
from tests.rollout.conftest import Fleet, wait_until

WINDOW_S = 10
SECRET = "abort-hook-secret"

LIVE: dict[str, Any] = {
    "workflow": "guarded",
    "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["gpt-test"]},
    "upstream": {"timeout_s": 5, "retries": 2},
    "data": {"deny_terms": ["forbidden-word"]},
}


def candidate(upstream: FakeUpstream) -> dict[str, Any]:
    return {
        **LIVE,
        "description": "the same rules, without retries",
        "upstream": {"timeout_s": 5, "retries": 0},
        "rollout": {
            "percent": 50,
            "key": "header:x-session-id",
            "abort_on": {
                "window_s": WINDOW_S,
                "min_requests": 20,
                "error_rate": 0.1,
                "block_rate": 0.1,
                "webhook": f"{upstream.base_url}/hooks/abort",
                "webhook_secret_env": "ABORT_HOOK_SECRET",
            },
        },
    }


class Traffic:
    """Random callers on both instances until stopped: a fifth of them say a blocked word."""

    def __init__(self, fleet: Fleet, workers: int = 6) -> None:
        self._fleet = fleet
        self._stop = threading.Event()
        self.sent = 0  # before the callers start: the first answer counts itself
        self._pool = ThreadPoolExecutor(workers)
        self._jobs = [self._pool.submit(self._run, seed) for seed in range(workers)]

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self._stop.is_set():
            text = "tell me about forbidden-word" if rng.random() < 0.2 else "hello there"
            session = f"s-{rng.getrandbits(40):010x}"
            self._fleet.chat(
                rng.randrange(2), "guarded", text, {"x-session-id": session}, "gpt-test"
            )
            self.sent += 1

    def stop(self) -> None:
        self._stop.set()
        for job in self._jobs:
            job.result()
        self._pool.shutdown()


def aborted(fleet: Fleet, i: int) -> dict[str, Any] | None:
    result: dict[str, Any] | None = fleet.rollout(i, "guarded")["candidate"]["aborted"]
    return result


def test_no_abort_on_noise_then_abort_within_the_window_on_both_instances(
    fleets: Callable[..., Fleet], upstream: FakeUpstream
) -> None:
    fleet = fleets(upstream, {"guarded.yaml": LIVE}, shared=True)
    fleet.env["ABORT_HOOK_SECRET"] = SECRET
    fleet.write_policy("guarded.candidate.yaml", candidate(upstream))
    fleet.restart(0)
    fleet.restart(1)
    cand_v = fleet.rollout(0, "guarded")["candidate"]["version"]

    traffic = Traffic(fleet)
    try:
        # Many windows of noise: the window slides every second, each instance judges each
        # second, so this is some 50 judgements of identical behaviour.
        time.sleep(2.5 * WINDOW_S)
        assert aborted(fleet, 0) is None and aborted(fleet, 1) is None, aborted(fleet, 0)
        window = fleet.rollout(0, "guarded")["candidate"]["window"]
        judged = window["candidate"]["requests"] >= 20 and window["live"]["requests"] >= 20
        assert judged, window
        assert window["candidate"]["block_rate"] > 0  # the noise was there to be judged

        # Inject: half the upstream's answers fail. Live retries them away, the candidate not.
        rng = random.Random(5)
        upstream.script(
            "gpt-up",
            *(
                Status(500, retry_after=0.01) if rng.random() < 0.5 else Reply()
                for _ in range(20_000)
            ),
        )
        took = wait_until(
            lambda: aborted(fleet, 0) is not None and aborted(fleet, 1) is not None,
            timeout=WINDOW_S + 3,
            step=0.2,
        )
    finally:
        traffic.stop()
    assert took <= WINDOW_S + 3, fleet.rollout(0, "guarded")
    one, two = aborted(fleet, 0), aborted(fleet, 1)
    assert one == two  # one verdict, shared
    assert one is not None and one["signal"] == "error_rate" and one["version"] == cand_v
    assert one["candidate"] > one["live"] + one["limit"]
    assert traffic.sent > 200

    # 0% on every instance: sessions the candidate had are back on live.
    upstream.reset()
    live_v = fleet.rollout(0, "guarded")["live_version"]
    for i in range(40):
        assert (
            fleet.chat(i % 2, "guarded", "hi", {"x-session-id": f"after-{i}"}, "gpt-test").version
            == live_v
        )

    # Recorded once (the instance that wrote the abort), counted once, announced signed.
    events = [r for r in fleet.records("rollout") if r.workflow == "guarded"]
    assert [e.reasons for e in events] == [["rollout.aborted"]]
    assert events[0].rollout is not None and events[0].rollout["signal"] == "error_rate"
    counted = 0.0
    for i in (0, 1):
        for line in httpx.get(f"{fleet.url(i)}/metrics").text.splitlines():
            if line.startswith(
                'gateway_rollout_aborts_total{signal="error_rate",workflow="guarded"}'
            ):
                counted += float(line.split()[-1])
    assert counted == 1
    wait_until(lambda: any(r.path == "/hooks/abort" for r in upstream.received), timeout=5)
    hook = next(r for r in upstream.received if r.path == "/hooks/abort")
    assert hook.body["event"] == "rollout.aborted" and hook.body["candidate_version"] == cand_v
    # Signed as review webhooks are; the fake parsed the body, and orjson writes it back
    # byte for byte (same key order, same float text).
    at = int(hook.headers["x-gateway-signature"].split(",")[0].removeprefix("t="))
    assert hook.headers["x-gateway-signature"] == sign(SECRET.encode(), orjson.dumps(hook.body), at)
