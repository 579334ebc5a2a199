"""The review store on SQLite and on PostgreSQL: the same body on both."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gateway.review.store import Delivery, Item, ReviewStore, Session


def item(n: int, **changes: object) -> Item:
    fields: dict[str, object] = dict(
        id=f"rv_{n:04d}", workflow="held", request_id=f"req{n}", created=1_700_000_000.0 + n,
        kind="request", trigger="blocked", reason="boundary.blocked_entity", subject="alice",
        roles=["analyst"], team=None, api="openai", model="gpt-test", policy_version="sha256:x",
        assign_to=[], sla_at=1_700_000_000.0 + n + 60, request={"messages": []},
    )  # fmt: skip
    fields.update(changes)
    return Item(**fields)  # type: ignore[arg-type]


async def test_oldest_first_with_filters_and_keyset_pages(
    make_store: Callable[[], ReviewStore],
) -> None:
    store = make_store()
    for n in (3, 1, 2):
        await store.add(item(n, workflow="other" if n == 2 else "held"))
    assert [i.id for i in await store.list()] == ["rv_0001", "rv_0002", "rv_0003"]
    assert [i.id for i in await store.list(workflow="held")] == ["rv_0001", "rv_0003"]
    first = await store.list(limit=2)
    rest = await store.list(after=(first[-1].created, first[-1].id), limit=2)
    assert [i.id for i in first + rest] == ["rv_0001", "rv_0002", "rv_0003"]
    got = await store.get("rv_0001")
    assert got is not None
    assert got.request == {"messages": []}
    assert got.state == "pending"


async def test_one_claim_wins_and_a_decision_needs_the_live_claim(
    make_store: Callable[[], ReviewStore],
) -> None:
    store = make_store()
    await store.add(item(1))
    now = time.time()
    results = await asyncio.gather(
        *(store.claim("rv_0001", f"r{k}", now + 60, now) for k in range(8))
    )
    assert results.count(True) == 1
    winner = f"r{results.index(True)}"
    loser = "r9"
    assert not await store.decide("rv_0001", loser, "approved", None, None, None, now)
    assert await store.decide("rv_0001", winner, "rejected", "no", "{}", 200, now)
    decided = await store.get("rv_0001")
    assert decided is not None
    assert (decided.state, decided.verdict, decided.decided_by, decided.note) == (
        "rejected",
        "rejected",
        winner,
        "no",
    )
    # Decided: nobody claims or decides it again.
    assert not await store.claim("rv_0001", winner, now + 60, now)
    assert not await store.decide("rv_0001", winner, "approved", None, None, None, now)
    assert await store.list() == []


async def test_an_expired_claim_can_be_taken_and_cannot_decide(
    make_store: Callable[[], ReviewStore],
) -> None:
    store = make_store()
    await store.add(item(1))
    now = time.time()
    assert await store.claim("rv_0001", "rita", now - 1, now - 100)  # expired at once
    assert not await store.decide("rv_0001", "rita", "approved", None, None, None, now)
    assert await store.claim("rv_0001", "remy", now + 60, now)
    assert not await store.claim("rv_0001", "rita", now + 60, now)


async def test_a_restart_loses_no_pending_or_claimed_item(
    make_store: Callable[[], ReviewStore],
) -> None:
    store = make_store()
    for n in range(1, 4):
        await store.add(item(n))
    now = time.time()
    assert await store.claim("rv_0002", "rita", now + 600, now)
    await store.delivered("rv_0003", Delivery(1, now, 500, None))
    await store.close()
    again = make_store()
    items = {i.id: i for i in await again.list()}
    assert sorted(items) == ["rv_0001", "rv_0002", "rv_0003"]
    assert items["rv_0002"].claimed(time.time())
    assert items["rv_0002"].claimed_by == "rita"
    got = await again.get("rv_0003")
    assert got is not None
    assert got.deliveries == [Delivery(1, now, 500, None)]


async def test_backlog_counts_and_overdue(make_store: Callable[[], ReviewStore]) -> None:
    store = make_store()
    now = time.time()
    await store.add(item(1, created=now - 120, sla_at=now - 60))
    await store.add(item(2, created=now - 10, sla_at=now + 60))
    counts = await store.counts(now)
    assert counts["held"]["pending"] == 2
    assert counts["held"]["overdue"] == 1
    assert 119 < counts["held"]["oldest_age_s"] < 121
    late = await store.get("rv_0001")
    assert late is not None
    assert late.overdue(now)
    assert await store.claim("rv_0001", "rita", now + 60, now)
    claimed = await store.get("rv_0001")
    assert claimed is not None
    assert not claimed.overdue(now)  # someone holds it


async def test_sessions_expire_and_end(make_store: Callable[[], ReviewStore]) -> None:
    store = make_store()
    now = time.time()
    await store.new_session(Session("s1", "rita", frozenset({"reviewer"}), "c1", now + 60))
    await store.new_session(Session("s2", "rita", frozenset({"reviewer"}), "c2", now - 1))
    got = await store.session("s1", now)
    assert got is not None
    assert (got.subject, got.roles, got.csrf) == ("rita", frozenset({"reviewer"}), "c1")
    assert await store.session("s2", now) is None
    await store.end_session("s1")
    assert await store.session("s1", now) is None
