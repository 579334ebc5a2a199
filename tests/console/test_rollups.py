"""The overview's rollups: the figures of settled five-minute buckets are computed once and
read back, open buckets are read live, and both add up to what the records say."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from gateway.audit.chain import Chain
from gateway.audit.sqlite import SqliteSink
from gateway.console.audit_pages import overview_page
from gateway.console.overview import overview
from gateway.console.rollups import BUCKET_S, Rollup, Rollups
from gateway.review.store import ReviewStore
from tests.audit.conftest import record


async def test_settled_buckets_are_rolled_up_once_and_open_ones_read_live(
    make_store: Callable[[], ReviewStore], tmp_path: Path
) -> None:
    audit = SqliteSink(tmp_path / "audit.db", Chain(None))
    now = time.time()
    old = [
        record(n, time=now - 3600 + n, workflow="a" if n % 2 else "b", latency_ms=10.0 * n,
               decision="deny" if n % 3 == 0 else "allow", reasons=["boundary.blocked_entity"]
               if n % 3 == 0 else [], actual_usd=0.5, fallback="message" if n == 1 else None,
               entities={"request": {"mask": {"EMAIL_ADDRESS": 2}}})
        for n in range(1, 41)
    ]  # fmt: skip
    fresh = [record(100 + n, time=now - 5, workflow="a") for n in range(3)]
    not_traffic = [record(200 + n, time=now - 3000, endpoint=e, workflow="a")
                   for n, e in enumerate(("review", "reviews", "admin", "policy", "rollout",
                                          "console"))]  # fmt: skip
    await audit.write([*old, *not_traffic, *fresh])
    store = make_store()
    rollups = Rollups(audit, store)
    try:
        figures, start, behind = await rollups.period(now - 2 * 3600, now)
        assert behind == 0  # waited for
        assert start == (now - 2 * 3600) // BUCKET_S * BUCKET_S
        a, b = figures["a"], figures["b"]
        # Review actions, polls, promotions, pauses and sign-ins are not traffic.
        assert (a.requests, b.requests) == (20 + 3, 20)
        assert a.decisions["deny"] + b.decisions["deny"] == 13
        assert b.reasons["boundary.blocked_entity"] + a.reasons["boundary.blocked_entity"] == 13
        assert a.entities["mask:EMAIL_ADDRESS"] == 40
        assert a.fallbacks == 1
        assert abs(a.cost_usd + b.cost_usd - 20.0) < 1e-9
        # 40 latencies of 10..400 ms: p50 and p95 within the histogram's 20%.
        both = Rollup()
        for r in (a, b):
            both.merge(r)
        assert 200 * 0.8 <= both.quantile_ms(0.5) <= 200 * 1.25
        assert 380 * 0.8 <= both.quantile_ms(0.95) <= 380 * 1.25
        done = await store.db.fetch(f"SELECT COUNT(*) FROM {store.prefix}rollup_done", [])
        assert done[0][0] >= 20  # the settled buckets of the two hours
        # Read back from the rollups: a record slipped into a settled bucket is not recounted
        # (settled means no more records arrive there), new live records are.
        await audit.write([record(300, time=now - 3500, workflow="a"),
                           record(301, time=time.time() - 1, workflow="a")])  # fmt: skip
        again, _, _ = await rollups.period(now - 2 * 3600, time.time())
        assert again["a"].requests == a.requests + 1
        assert again["b"].requests == b.requests
    finally:
        await audit.close()


async def test_the_overview_shows_a_signal_that_drifted_from_the_period_before(
    make_store: Callable[[], ReviewStore], tmp_path: Path
) -> None:
    audit = SqliteSink(tmp_path / "audit.db", Chain(None))
    now = time.time()
    blocked = ["boundary.blocked_entity"]
    # The hour before: 2 blocks in 300 requests; this hour: 60 in 300. Review rates equal.
    before = [record(n, time=now - 7000 + n * 10, workflow="w",
                     reasons=blocked if n < 2 else []) for n in range(300)]  # fmt: skip
    recent = [record(1000 + n, time=now - 3500 + n * 10, workflow="w",
                     reasons=blocked if n < 60 else []) for n in range(300)]  # fmt: skip
    quiet = [record(2000 + n, time=now - 3500 + n, workflow="q", reasons=blocked)
             for n in range(20)]  # fmt: skip
    # Written in the order they arrived, as the gateway writes them (give or take a request's
    # duration: gateway/console/rollups.py).
    await audit.write(sorted([*before, *recent, *quiet], key=lambda r: r.time))
    store = make_store()
    try:
        stats, _, _ = await overview(Rollups(audit, store), store, {}, 1.0)
        by_name = {s.workflow: s for s in stats}
        drift = by_name["w"].drift
        assert [d[0] for d in drift] == ["block_rate"]
        _, rate, baseline, z = drift[0]
        assert (round(rate, 2), round(baseline, 3)) == (0.2, 0.007)
        assert z > 3
        assert by_name["q"].drift == []  # 20 requests: too few to score
        page = overview_page(stats, 1.0, now - 3600)
        assert "block_rate 20.0%" in page
    finally:
        await audit.close()


async def test_a_page_does_not_wait_for_a_gap_to_be_rolled_up(
    make_store: Callable[[], ReviewStore], tmp_path: Path
) -> None:
    audit = SqliteSink(tmp_path / "audit.db", Chain(None))
    now = time.time()
    await audit.write([record(n, time=now - 3 * 3600 + n * 30, workflow="w") for n in range(300)])
    store = make_store()
    rollups = Rollups(audit, store)
    try:
        first = await rollups.period(now - 3 * 3600, now, wait=False)
        assert first.behind > 30  # the settled buckets: left out, rolled up in the background
        assert sum(r.requests for r in first.figures.values()) < 300
        for _ in range(100):
            later = await rollups.period(now - 3 * 3600, now, wait=False)
            if not later.behind:
                break
            await asyncio.sleep(0.05)
        assert later.behind == 0
        assert later.figures["w"].requests == 300  # all of it, once rolled up
    finally:
        await audit.close()
