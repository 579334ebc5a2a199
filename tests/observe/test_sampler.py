"""The sampler: requests' counts reach the exported metrics within a tenth of a second, so
no once-a-second flush holds the event loop for a second's worth of them."""

from __future__ import annotations

import asyncio

from gateway.observe.metrics import Metrics
from gateway.observe.sampler import FOLD_S, INTERVAL_S, Sampler
from gateway.policy.registry import PolicyRegistry


async def test_counts_are_flushed_every_fold_not_once_a_second() -> None:
    metrics = Metrics()
    sampler = Sampler(metrics, PolicyRegistry({}), {})
    sampler.start()
    try:
        labels = {"workflow": "w", "component": "redis"}
        for _ in range(3):
            metrics.fail_open.add(("w", "redis"))
        await asyncio.sleep(FOLD_S * 2.5)
        assert FOLD_S * 2.5 < INTERVAL_S
        assert metrics.registry.get_sample_value("gateway_fail_open_total", labels) == 3
    finally:
        await sampler.stop()
