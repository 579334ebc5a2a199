"""The review queue end to end: the official SDK gets a held answer, reviewers claim and decide
through /admin/reviews, the app polls the outcome, the webhook receives each decision signed,
and every action is a record on the audit chain."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sqlite3
from typing import Any

import httpx
import openai
import pytest

from gateway.audit.chain import Chain
from gateway.audit.record import AuditRecord
from gateway.audit.sqlite import SqliteSink
from tests.fakes.upstream import FakeUpstream, ToolCall
from tests.review.conftest import FALLBACK, HOOK_SECRET, Hook, ReviewGateway
from tests.support.chain import verified
from tests.support.clients import openai_client

EMAIL = "jane.roe@example.org"


def sdk(gw: ReviewGateway, workflow: str, key: str | None = None) -> openai.OpenAI:
    return openai_client(
        base_url=f"{gw.url}/w/{workflow}/v1", api_key=key or gw.analyst, max_retries=0
    )


def ask(gw: ReviewGateway, workflow: str, text: str, **kw: Any) -> Any:
    return sdk(gw, workflow).chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": text}], **kw
    )


def poll(
    gw: ReviewGateway, workflow: str, review_id: str, key: str | None = None
) -> httpx.Response:
    with gw.client(key or gw.analyst) as c:
        return c.get(f"/w/{workflow}/v1/reviews/{review_id}")


def records(gw: ReviewGateway) -> list[AuditRecord]:
    with sqlite3.connect(gw.root / "audit.db") as db:
        rows = db.execute("SELECT body FROM audit_records ORDER BY seq").fetchall()
    return [AuditRecord.from_json(r[0]) for r in rows]


def actions(gw: ReviewGateway, review_id: str) -> list[tuple[str, str | None]]:
    return [
        (r.reasons[0], r.subject)
        for r in records(gw)
        if r.review_action
        and r.review_action.get("review_id") == review_id
        and r.endpoint == "review"
    ]


def verify_signature(headers: dict[str, str], body: bytes) -> None:
    parts = dict(p.split("=", 1) for p in headers["x-gateway-signature"].split(","))
    expected = hmac.new(HOOK_SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(parts["v1"], expected.hexdigest())


def held(gw: ReviewGateway, text: str = f"Please email {EMAIL} the refund") -> str:
    raw = ask(gw, "held", text)
    assert raw.http_response.status_code == 202
    assert raw.headers["x-gateway-review-status"] == "pending"
    assert "review.held" in raw.headers["x-gateway-decision"]
    assert raw.parse().choices[0].message.content == FALLBACK  # the SDK reads it as success
    review_id: str = raw.headers["x-gateway-review-id"]
    return review_id


def test_a_held_request_is_claimed_approved_and_sent_on_masked(
    review_gw: ReviewGateway, upstream: FakeUpstream, hook: Hook
) -> None:
    gw = review_gw
    review_id = held(gw)
    assert upstream.requests_for("gpt-up") == []  # blocked: nothing left
    pending = poll(gw, "held", review_id)
    assert pending.status_code == 200
    assert pending.json()["status"] == "pending"
    assert pending.json()["answer"] is None
    with gw.client(gw.reviewer) as rita, gw.client(gw.other_reviewer) as remy:
        queue = rita.get("/admin/reviews/", params={"workflow": "held"})
        assert queue.status_code == 200
        assert review_id in [i["id"] for i in queue.json()["items"]]
        shown = rita.get(f"/admin/reviews/{review_id}")
        assert EMAIL not in shown.text  # the reviewer reads the masked request
        assert "<EMAIL_ADDRESS>" in shown.text
        # No claim, no decision; then one claim wins.
        assert (
            rita.post(f"/admin/reviews/{review_id}/decide", json={"verdict": "approve"}).status_code
            == 409
        )
        assert rita.post(f"/admin/reviews/{review_id}/claim").status_code == 200
        taken = remy.post(f"/admin/reviews/{review_id}/claim")
        assert taken.status_code == 409  # rita holds it
        decided = rita.post(f"/admin/reviews/{review_id}/decide", json={"verdict": "approve"})
        assert decided.status_code == 200, decided.text
        assert decided.json()["state"] == "approved"
    sent = upstream.requests_for("gpt-up")
    assert len(sent) == 1
    assert EMAIL not in str(sent[0].body)
    assert "<EMAIL_ADDRESS>" in str(sent[0].body)
    outcome = poll(gw, "held", review_id).json()
    assert outcome["status"] == "approved"
    assert outcome["verdict"] == "approved"
    assert "<EMAIL_ADDRESS>" in outcome["answer"]["choices"][0]["message"]["content"]
    got = hook.wait_for(1)
    mine = [(h, b) for h, b in got if h["x-gateway-review-id"] == review_id]
    assert mine
    verify_signature(*mine[0])
    assert EMAIL not in mine[0][1].decode()
    assert actions(gw, review_id)[:2] == [("review.claimed", "rita"), ("review.approved", "rita")]


def test_assign_to_admits_listed_roles_and_subjects_only(review_gw: ReviewGateway) -> None:
    gw = review_gw
    review_id = held(gw)
    with gw.client(gw.admin) as root, gw.client(gw.auditor) as audrey:
        assert audrey.post(f"/admin/reviews/{review_id}/claim").status_code == 403
        assert root.post(f"/admin/reviews/{review_id}/claim").status_code == 200
        assert (
            root.post(
                f"/admin/reviews/{review_id}/decide", json={"verdict": "reject", "note": "no"}
            ).status_code
            == 200
        )


def test_reject_answers_the_fallback_and_the_note_and_edit_answers_the_reviewers_text(
    review_gw: ReviewGateway, hook: Hook
) -> None:
    gw = review_gw
    rejected, edited = held(gw), held(gw)
    with gw.client(gw.reviewer) as rita:
        for review_id in (rejected, edited):
            assert rita.post(f"/admin/reviews/{review_id}/claim").status_code == 200
        assert (
            rita.post(
                f"/admin/reviews/{rejected}/decide",
                json={"verdict": "reject", "note": "Refunds need a ticket."},
            ).status_code
            == 200
        )
        assert (
            rita.post(
                f"/admin/reviews/{edited}/decide",
                json={"verdict": "edit", "text": "Your refund is on its way."},
            ).status_code
            == 200
        )
    out = poll(gw, "held", rejected).json()
    assert out["status"] == "rejected"
    assert out["note"] == "Refunds need a ticket."
    said = out["answer"]["choices"][0]["message"]["content"]
    assert FALLBACK in said
    assert "Refunds need a ticket." in said
    out = poll(gw, "held", edited).json()
    assert (out["status"], out["verdict"]) == ("approved", "edited")
    assert out["answer"]["choices"][0]["message"]["content"] == "Your refund is on its way."
    ids = {b["id"]: b for b in (hook.wait_for(4) and hook.bodies())}
    assert ids[rejected]["status"] == "rejected"
    assert ids[edited]["verdict"] == "edited"


def test_only_the_caller_who_made_it_reads_a_review(review_gw: ReviewGateway) -> None:
    gw = review_gw
    review_id = held(gw)
    assert poll(gw, "held", review_id, key=gw.other_analyst).status_code == 404
    assert poll(gw, "tooling", review_id).status_code == 404
    assert poll(gw, "held", "rv_unknown").status_code == 404
    with httpx.Client(base_url=gw.url) as anon:
        assert anon.get(f"/w/held/v1/reviews/{review_id}").status_code == 401


def test_reviewer_routes_refuse_anonymous_and_other_roles(review_gw: ReviewGateway) -> None:
    gw = review_gw
    with httpx.Client(base_url=gw.url) as anon:
        assert anon.get("/admin/reviews/").status_code == 401
    with gw.client(gw.analyst) as alice, gw.client(gw.auditor) as audrey:
        for client in (alice, audrey):
            assert client.get("/admin/reviews/").status_code == 403
            assert client.post("/admin/reviews/x/claim").status_code == 403
    with gw.client(gw.reviewer) as rita:
        assert rita.get("/admin/policies").status_code == 403  # the admin API stays admin's


def test_a_tool_call_is_held_until_approved_and_released_unchanged(
    review_gw: ReviewGateway, upstream: FakeUpstream
) -> None:
    gw = review_gw
    tools = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in ("refund_payment", "lookup_order")
    ]
    upstream.script("gpt-up", ToolCall("refund_payment", ('{"order": 42}',)))
    raw = ask(gw, "tooling", "refund order 42", tools=tools)
    assert raw.http_response.status_code == 202
    assert raw.parse().choices[0].message.tool_calls is None  # the app cannot run it yet
    review_id = raw.headers["x-gateway-review-id"]
    with gw.client(gw.reviewer) as rita:
        assert rita.post(f"/admin/reviews/{review_id}/claim").status_code == 200
        assert (
            rita.post(f"/admin/reviews/{review_id}/decide", json={"verdict": "approve"}).status_code
            == 200
        )
    answer = poll(gw, "tooling", review_id).json()["answer"]
    call = answer["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "refund_payment", "arguments": '{"order": 42}'}
    # A tool the policy does not hold goes straight through; one it does not list is refused.
    upstream.script("gpt-up", ToolCall("lookup_order", ('{"order": 42}',)))
    assert ask(gw, "tooling", "look it up", tools=tools).http_response.status_code == 200
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(gw, "tooling", "x", tools=[{"type": "function", "function": {"name": "wire_money"}}])
    assert refused.value.body["code"] == "access.tool_denied"  # type: ignore[index]


def test_fallback_review_true_is_the_flag_shorthand(review_gw: ReviewGateway) -> None:
    gw = review_gw
    raw = ask(gw, "flagged", f"mail {EMAIL}")
    assert raw.http_response.status_code == 200  # answered as before: the fallback message
    assert "x-gateway-review-id" not in raw.headers
    assert raw.parse().choices[0].message.content == FALLBACK
    with gw.client(gw.reviewer) as rita:
        items = rita.get("/admin/reviews/", params={"workflow": "flagged"}).json()["items"]
    assert items[-1]["kind"] == "flag"
    assert items[-1]["trigger"] == "blocked"
    record = next(r for r in records(gw) if r.request_id == items[-1]["request_id"])
    assert record.review
    assert record.review_action == {"action": "opened", "review_id": items[-1]["id"]}


def test_webhook_retries_until_taken_and_every_attempt_is_recorded(
    review_gw: ReviewGateway, hook: Hook
) -> None:
    gw = review_gw
    review_id = held(gw)
    hook.fail = 2
    with gw.client(gw.reviewer) as rita:
        rita.post(f"/admin/reviews/{review_id}/claim")
        rita.post(f"/admin/reviews/{review_id}/decide", json={"verdict": "approve"})
    before = len([1 for h, _ in hook.got if h["x-gateway-review-id"] == review_id])
    deadline = 100
    while deadline and len([1 for h, _ in hook.got if h["x-gateway-review-id"] == review_id]) < 3:
        hook.wait_for(len(hook.got) + 1, timeout=0.1)
        deadline -= 1
    assert before <= 3
    with gw.client(gw.reviewer) as rita:
        deliveries = rita.get(f"/admin/reviews/{review_id}").json()["deliveries"]
    assert [d["status"] for d in deliveries] == [500, 500, 204]
    assert [a for a, _ in actions(gw, review_id)] == [
        "review.claimed",
        "review.approved",
        "review.undelivered",
        "review.undelivered",
        "review.delivered",
    ]


def test_audit_verify_covers_the_review_actions(review_gw: ReviewGateway) -> None:
    async def check() -> None:
        report = await verified(SqliteSink(review_gw.root / "audit.db", Chain(None)))
        assert report.ok, report
        assert report.checked == len(records(review_gw))

    assert any(r.endpoint == "review" for r in records(review_gw))
    asyncio.run(check())
