"""Webhook deliveries outlive the process: a decision whose receiver kept failing is delivered
by the next start of a real ``gateway serve`` process, from the attempts the store recorded
(numbering and backoff carried on), after a clean stop (the lease released) and after a
SIGKILL (the lease lapses); every attempt is in the store and on the audit chain, and the
chain verifies. The store's leases are compare-and-set on both backends, so two processes
never both deliver."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.chain import Chain
from gateway.audit.sqlite import SqliteSink
from gateway.review.store import Delivery, Item, ReviewStore
from tests.fakes.upstream import FakeUpstream
from tests.review.conftest import Hook, ReviewGateway, write_review_gateway
from tests.review.test_queue import ask, records, verify_signature
from tests.support.chain import verified
from tests.support.process import kill_group, serve

# Attempts 1 s apart, then 2 s, 4 s...: room to stop the process between two of them.
_REVIEW = {"webhook_backoff_s": 1.0, "webhook_attempts": 8, "webhook_timeout_s": 1.0}


def _start(
    root: Path, upstream: FakeUpstream, hook: Hook
) -> tuple[ReviewGateway, subprocess.Popen[bytes]]:
    """``gateway serve`` as its own process (``server`` unused: the process is stopped here)."""
    path, env, keys = write_review_gateway(root, upstream, hook, {"review": _REVIEW})
    proc, url = serve(path, root / "gateway.log", env=env)
    return ReviewGateway(url, root, server=None, **keys), proc  # type: ignore[arg-type]


def _deliveries(gw: ReviewGateway, review_id: str) -> list[dict[str, Any]]:
    with gw.client(gw.reviewer) as rita:
        found: list[dict[str, Any]] = rita.get(f"/admin/reviews/{review_id}").json()["deliveries"]
    return found


def _decide(gw: ReviewGateway) -> str:
    raw = ask(gw, "held", "Please email jane.roe@example.org the refund")
    assert raw.http_response.status_code == 202
    review_id: str = raw.headers["x-gateway-review-id"]
    with gw.client(gw.reviewer) as rita:
        assert rita.post(f"/admin/reviews/{review_id}/claim").status_code == 200
        decided = rita.post(
            f"/admin/reviews/{review_id}/decide", json={"verdict": "reject", "note": "no"}
        )
        assert decided.status_code == 200, decided.text
    return review_id


def _posts(hook: Hook, review_id: str) -> list[tuple[dict[str, str], bytes]]:
    return [(h, b) for h, b in hook.got if h["x-gateway-review-id"] == review_id]


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _verify_chain(root: Path) -> None:
    async def check() -> None:
        report = await verified(SqliteSink(root / "audit.db", Chain(None)))
        assert report.ok, report

    asyncio.run(check())


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_a_failing_delivery_is_resumed_by_the_next_start(
    upstream: FakeUpstream, hook: Hook, tmp_path: Path, stop: str
) -> None:
    hook.fail = 10_000  # the receiver refuses everything until the restart
    gw, proc = _start(tmp_path, upstream, hook)
    try:
        review_id = _decide(gw)
        # Stopped in the backoff after attempt 2 (2 s long), once the store has it.
        _until(lambda: len(_deliveries(gw, review_id)) >= 2, 10, "two refused attempts")
    finally:
        if stop == "sigterm":
            proc.send_signal(signal.SIGTERM)
            # uvicorn shuts down cleanly, then raises the signal it caught again.
            assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        else:
            kill_group(proc)
    before = len(_posts(hook, review_id))
    with hook.arrived:
        hook.fail = 0
    stopped = time.time()
    gw, proc = _start(tmp_path, upstream, hook)
    try:
        _until(
            lambda: (d := _deliveries(gw, review_id)) != [] and d[-1]["status"] == 204,
            20,
            "the delivery after the restart",
        )
        time.sleep(0.5)  # nothing more is sent: the delivery has ended
        posts = _posts(hook, review_id)
        deliveries = _deliveries(gw, review_id)
        assert len(posts) > before
        # Every attempt was recorded, numbered on across the restart, the last the success.
        assert [d["attempt"] for d in deliveries] == list(range(1, len(posts) + 1))
        assert [d["status"] for d in deliveries] == [500] * (len(posts) - 1) + [204]
        assert len(posts) >= 3
        assert deliveries[-1]["at"] > stopped  # sent by the new process
        for headers, body in posts:
            verify_signature(headers, body)
        assert {b for _, b in posts} == {posts[0][1]}  # the same decision every time
        delivered = [
            (r.reasons[0], r.review_action["attempt"], r.review_action["http_status"])
            for r in records(gw)
            if r.review_action is not None
            and r.review_action.get("review_id") == review_id
            and r.review_action.get("action") == "deliver"
        ]
        assert delivered == [("review.undelivered", n, 500) for n in range(1, len(posts))] + [
            ("review.delivered", len(posts), 204)
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    _verify_chain(tmp_path)


async def test_a_delivery_lease_is_taken_by_one_process(
    make_store: Callable[[], ReviewStore],
) -> None:
    """Two processes sweeping at once: one compare-and-set wins, a renewal by the loser fails,
    and an ended delivery is no longer due."""
    store, other = make_store(), make_store()
    now = time.time()
    item = Item(
        id="rv_lease", workflow="held", request_id="r1", created=now, kind="request",
        trigger="blocked", reason="boundary.blocked_entity", subject="alice", roles=[],
        team=None, api="openai_chat", model="gpt-test", policy_version="v1", assign_to=[],
        sla_at=now + 60, webhook="http://127.0.0.1:9/hook",
    )  # fmt: skip
    await store.add(item)
    assert await store.claim("rv_lease", "rita", now + 60, now)
    assert await store.decide("rv_lease", "rita", "rejected", None, None, None, now, 0.0)
    assert await store.due_deliveries() == [("rv_lease", 0.0)]
    assert await other.due_deliveries() == [("rv_lease", 0.0)]
    won = [await s.swap_lease("rv_lease", 0.0, now + 10 + i) for i, s in enumerate((store, other))]
    assert won == [True, False]
    assert not await other.swap_lease("rv_lease", now + 11, now + 20)  # never held it
    assert await store.swap_lease("rv_lease", now + 10, now + 30)  # renewed by its holder
    await store.delivered("rv_lease", Delivery(1, now, 204, None))
    assert await store.swap_lease("rv_lease", now + 30, None)
    assert await other.due_deliveries() == []
