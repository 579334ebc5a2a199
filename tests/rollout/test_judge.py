"""The abort judge never fires on noise and fires on a real regression: thousands of windows
of two identical arms under random traffic, then an injected failure rate."""

from __future__ import annotations

import random

from gateway.rollout.judge import judge, p95
from gateway.rollout.signals import Counts, latency_field
from gateway.rollout.spec import AbortOn

ABORT = AbortOn(
    window_s=60,
    min_requests=50,
    error_rate=0.05,
    block_rate=0.05,
    refusal_rate=0.05,
    latency_p95=1.5,
    cost_per_request=1.5,
)


def window(rng: random.Random, n: int, error: float, block: float, slow: float = 1.0) -> Counts:
    counts: Counts = {"requests": float(n)}
    for _ in range(n):
        if rng.random() < error:
            counts["errors"] = counts.get("errors", 0.0) + 1
        if rng.random() < block:
            counts["blocks"] = counts.get("blocks", 0.0) + 1
        latency = rng.lognormvariate(-2.5, 0.6) * slow
        field = latency_field(latency)
        counts[field] = counts.get(field, 0.0) + 1
        cost = rng.expovariate(1000.0)
        counts["cost"] = counts.get("cost", 0.0) + cost
        counts["cost_sq"] = counts.get("cost_sq", 0.0) + cost * cost
    return counts


def test_identical_arms_never_abort_over_thousands_of_windows() -> None:
    rng = random.Random(20)
    fired = []
    for i in range(3000):
        n_c, n_l = rng.randint(50, 120), rng.randint(50, 600)  # a small canary, a big live
        error, block = rng.choice([0.0, 0.01, 0.05, 0.2]), rng.choice([0.0, 0.1, 0.3])
        crossing = judge(ABORT, window(rng, n_c, error, block), window(rng, n_l, error, block))
        if crossing is not None:
            fired.append((i, crossing))
    assert fired == []


def test_a_threshold_crossed_by_noise_alone_is_not_enough() -> None:
    # 9 errors in 50 against 2 in 50: 14 points over a 5-point threshold, yet not evidence.
    live = {"requests": 50.0, "errors": 2.0}
    candidate = {"requests": 50.0, "errors": 9.0}
    assert judge(ABORT, candidate, live) is None


def test_an_injected_error_rate_aborts() -> None:
    rng = random.Random(3)
    crossing = judge(ABORT, window(rng, 100, 0.4, 0.1), window(rng, 400, 0.02, 0.1))
    assert crossing is not None and crossing.signal == "error_rate"
    assert crossing.candidate > crossing.live + crossing.limit


def test_a_slower_candidate_aborts_on_latency() -> None:
    rng = random.Random(4)
    crossing = judge(ABORT, window(rng, 200, 0, 0, slow=3.0), window(rng, 400, 0, 0))
    assert crossing is not None and crossing.signal == "latency_p95"
    assert crossing.candidate > 1.5 * crossing.live


def test_nothing_is_judged_below_min_requests() -> None:
    assert judge(ABORT, {"requests": 49.0, "errors": 49.0}, {"requests": 500.0}) is None


def test_p95_of_a_histogram() -> None:
    counts: Counts = {}
    for ms in range(1, 101):
        field = latency_field(ms / 1000)
        counts[field] = counts.get(field, 0.0) + 1
    assert 0.095 <= p95(counts) <= 0.095 * 1.25
