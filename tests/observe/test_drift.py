"""Drift scores: a real change in a busy workflow scores high, noise and quiet workflows do
not; live per workflow at /metrics."""

from __future__ import annotations

import gc
import time
from pathlib import Path

from gateway.observe.config import DriftConfig
from gateway.observe.drift import Drift
from gateway.observe.signals import Sample, Window, drift_scores, percentile
from tests.observe.conftest import observed_config, start_observed, value


def _sample(masked: bool = False, blocked: bool = False, latency: float = 0.1) -> Sample:
    reasons = ["boundary.blocked_entity"] if blocked else []
    entities = {"request": {"mask": {"EMAIL_ADDRESS": 1}}} if masked else None
    return Sample.of(reasons, entities, False, False, 10, 0.001, latency)


def test_a_jump_in_a_rate_drifts_and_steady_traffic_does_not() -> None:
    long = [_sample(blocked=i % 100 == 0) for i in range(5000)]  # 1 % blocked
    steady = [_sample(blocked=i % 100 == 0) for i in range(200)]
    jumped = [_sample(blocked=i % 5 == 0) for i in range(200)]  # 20 % blocked
    assert abs(drift_scores(Window(samples=steady), Window(samples=long), 100)["block_rate"][2]) < 3
    value_, baseline, score = drift_scores(Window(samples=jumped), Window(samples=long), 100)[
        "block_rate"
    ]
    assert value_ == 0.2 and baseline == 0.01 and score > 10


def test_quiet_workflows_never_alarm() -> None:
    long = [_sample() for _ in range(50)]
    short = [_sample(blocked=True) for _ in range(20)]
    assert (
        drift_scores(Window(samples=short), Window(samples=long), min_samples=100)["block_rate"][2]
        == 0.0
    )


def test_latency_p95_and_entity_mask_rates() -> None:
    long = [_sample(latency=0.1 + i / 10000) for i in range(2000)]
    slow = [_sample(latency=1.0) for _ in range(200)]
    assert drift_scores(Window(samples=slow), Window(samples=long), 100)["latency_p95"][2] > 10
    summary = Window(samples=[_sample(masked=True), _sample()]).summary()
    assert summary["mask_rate.EMAIL_ADDRESS"] == 0.5


def test_a_sliding_window_forgets_what_left_it() -> None:
    window = Window(3)
    for s in (_sample(blocked=True), _sample(masked=True), _sample(), _sample(), _sample()):
        window.add(s)
    summary = window.summary()
    assert summary["block_rate"] == 0 and "mask_rate.EMAIL_ADDRESS" not in summary
    assert len(window) == 3 and summary["output_tokens"] == 10


def test_live_drift_scores_per_workflow(tmp_path: Path) -> None:
    config = observed_config(drift={"short_window": 10, "long_window": 100, "min_samples": 10})
    server, gw = start_observed(tmp_path, config)
    try:
        for _ in range(60):
            assert gw.chat("triage", "plain question").status_code == 200
        for _ in range(10):
            assert gw.chat("triage", "mail bob@example.com").status_code == 200
        signal = {"workflow": "triage", "signal": "mask_rate.EMAIL_ADDRESS"}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # exported once a second
            scraped = gw.scrape()
            if value(scraped, "gateway_signal", window="short", **signal) == 1.0:
                break
            time.sleep(0.2)
        assert value(scraped, "gateway_signal", window="short", **signal) == 1.0
        assert value(scraped, "gateway_signal", window="long", **signal) == 10 / 70
        assert value(scraped, "gateway_drift_score", **signal) > 3
        assert value(scraped, "gateway_drift_score", workflow="triage", signal="block_rate") == 0
    finally:
        server.stop()


def test_the_windows_samples_leave_the_cyclic_gc() -> None:
    """Thousands of samples per workflow: if the GC kept tracking them, every older-generation
    collection would scan them all (branch ``holds``)."""
    window = Window(100, [_sample(masked=True), _sample(blocked=True)])
    window.extend([_sample(masked=True, latency=0.2), _sample()])
    gc.collect()
    gc.collect()  # a sample is untracked once what it holds is
    assert not any(gc.is_tracked(s) for s in window.samples)
    assert window.summary()["mask_rate.EMAIL_ADDRESS"] == 0.5


def test_a_fold_in_pieces_keeps_the_order_of_requests() -> None:
    """The sampler folds 64 requests at a time with requests finishing in the pauses, and a
    ``fold`` in a pause takes the rest: the windows see the requests in the order they ended."""
    config = DriftConfig(short_window=10, long_window=100)
    whole, pieces = Drift(config, None, None), Drift(config, None, None)  # type: ignore[arg-type]
    ended = [("flow", "v1", (), None, False, False, 1, 0.0, i / 1000) for i in range(150)]
    whole._pending = list(ended)
    whole.fold()
    pieces._pending = ended[:100]
    folding = pieces.folding(30)
    next(folding)
    pieces._pending += ended[100:120]  # ended in the pause
    next(folding)
    pieces.fold()  # a reader of the scores in a pause
    pieces._pending += ended[120:]
    for _ in folding:
        pass
    pieces.fold()
    assert list(pieces._windows["flow"].long.samples) == list(whole._windows["flow"].long.samples)
    assert [s[4] for s in pieces._windows["flow"].short.samples] == [
        i / 1000 for i in range(140, 150)
    ]


def test_percentiles_of_a_sliding_window_are_exact() -> None:
    latencies = [(i * 7919) % 1000 / 1000 for i in range(3000)]  # shuffled
    window = Window(1000)
    for start in range(0, 3000, 250):
        window.extend([_sample(latency=x) for x in latencies[start : start + 250]])
        kept = latencies[max(0, start + 250 - 1000) : start + 250]
        assert window.summary()["latency_p95"] == percentile(kept, 0.95)
