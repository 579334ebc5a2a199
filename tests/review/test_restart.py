"""A gateway restart keeps the queue: pending and claimed items survive, a claim stays its
holder's, and the app's poll and the decision work on the new process."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.fakes.upstream import FakeUpstream
from tests.review.conftest import Hook, start_review_gateway
from tests.review.test_queue import held, poll


def test_pending_and_claimed_items_survive_a_restart(
    upstream: FakeUpstream, hook: Hook, tmp_path: Path
) -> None:
    gw = start_review_gateway(tmp_path, upstream, hook)
    try:
        pending, claimed = held(gw), held(gw)
        with gw.client(gw.reviewer) as rita:
            assert rita.post(f"/admin/reviews/{claimed}/claim").status_code == 200
    finally:
        gw.server.stop()
    again = start_review_gateway(tmp_path, upstream, hook)
    try:
        # The backlog is counted in the metrics, from the store the new process opened.
        backlog = 'gateway_review_backlog{state="pending",workflow="held"} 2.0'
        for _ in range(50):
            if backlog in httpx.get(f"{again.url}/metrics").text:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the review backlog never reached /metrics")
        assert 'gateway_review_backlog{state="overdue",workflow="held"} 0.0' in (
            httpx.get(f"{again.url}/metrics").text
        )
        with again.client(again.reviewer) as rita, again.client(again.other_reviewer) as remy:
            items = {i["id"]: i for i in rita.get("/admin/reviews/").json()["items"]}
            assert {pending, claimed} <= set(items)
            assert items[claimed]["claimed_by"] == "rita"
            assert items[pending]["claimed_by"] is None
            assert remy.post(f"/admin/reviews/{claimed}/claim").status_code == 409
            decided = rita.post(
                f"/admin/reviews/{claimed}/decide", json={"verdict": "edit", "text": "done"}
            )
            assert decided.status_code == 200
        assert poll(again, "held", claimed).json()["status"] == "approved"
        assert poll(again, "held", pending).json()["status"] == "pending"
    finally:
        again.server.stop()
