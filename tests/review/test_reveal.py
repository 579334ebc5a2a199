"""Revealing tokenized values: a reviewer's copy holds the policy's tokens, never the values;
only a reviewer the item's workflow grants ``review.reveal`` (by role or subject) reads them,
with a reason, and every reveal, and every refusal, is an audit record naming who and why (the
why masked like any text)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from gateway.config import ConfigError, load_config
from tests.fakes.upstream import FakeUpstream
from tests.review.conftest import (
    Hook,
    ReviewGateway,
    review_policies,
    start_review_gateway,
)
from tests.review.test_queue import ask, records
from tests.support.server import write_yaml

EMAIL, PHONE = "vera.client@example.org", "+1 415 555 0134"


def held(gw: ReviewGateway, workflow: str = "tokens") -> str:
    raw = ask(gw, workflow, f"Write to {EMAIL} and call {PHONE} about the refund")
    assert raw.http_response.status_code == 202
    review_id: str = raw.headers["x-gateway-review-id"]
    return review_id


def _reveal(
    client: httpx.Client, review_id: str, why: str = "ticket 88 needs it"
) -> httpx.Response:
    return client.post(f"/admin/reviews/{review_id}/reveal", json={"why": why})


def reveals(gw: ReviewGateway, review_id: str) -> list[tuple[str, str | None, str]]:
    """(reason, subject, masked why) of each reveal and refused reveal of the item."""
    return [
        (r.reasons[0], r.subject, r.review_action["why"])
        for r in records(gw)
        if r.review_action is not None
        and r.review_action.get("review_id") == review_id
        and r.review_action.get("action") == "reveal"
    ]


def test_a_reviewer_sees_tokens_and_only_the_granted_role_reads_their_values(
    review_gw: ReviewGateway,
) -> None:
    gw = review_gw
    review_id = held(gw)
    with gw.client(gw.reviewer) as rita:
        shown = rita.get(f"/admin/reviews/{review_id}").text
    assert EMAIL not in shown
    assert PHONE not in shown
    assert re.search(r"<EMAIL_ADDRESS#[a-z2-7]{12}>", shown)  # the policy's token
    assert "<PHONE_NUMBER>" in shown  # blocked: only its type
    for key in (gw.reviewer, gw.admin):  # reviewers and admins the workflow does not grant
        with gw.client(key) as c:
            refused = _reveal(c, review_id, why=f"asked by {EMAIL}")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "review.reveal_denied"
        assert EMAIL not in refused.text
    with gw.client(gw.auditor) as audrey, httpx.Client(base_url=gw.url) as anon:
        assert _reveal(audrey, review_id).status_code == 403
        assert _reveal(anon, review_id).status_code == 401
    # A refusal reveals nothing, and is recorded as such: who tried, and why (masked).
    assert reveals(gw, review_id) == [
        ("review.reveal_denied", "rita", "asked by <EMAIL_ADDRESS>"),
        ("review.reveal_denied", "root", "asked by <EMAIL_ADDRESS>"),
    ]
    with gw.client(gw.revealer) as vera:
        assert _reveal(vera, review_id, why="  ").status_code == 400
        revealed = _reveal(vera, review_id, why=f"customer {EMAIL} asked, call {PHONE}")
    assert revealed.status_code == 200, revealed.text
    assert EMAIL in revealed.text
    assert PHONE not in revealed.text  # blocked values were never kept anywhere
    reveal = [r for r in records(gw) if r.reasons == ["review.revealed"]]
    assert len(reveal) == 1
    assert reveal[0].subject == "vera"
    assert reveal[0].review_action is not None
    action = reveal[0].review_action
    assert (action["review_id"], action["revealed"], action["entities"]) == (
        review_id, 1, ["EMAIL_ADDRESS"],
    )  # fmt: skip
    # The why is kept, masked under the workflow's policy like any text.
    assert action["why"] == "customer <EMAIL_ADDRESS> asked, call <PHONE_NUMBER>"
    assert EMAIL not in str(action)
    with gw.client(gw.revealer) as vera:  # the item itself still holds only the token
        assert EMAIL not in vera.get(f"/admin/reviews/{review_id}").text


def test_an_approved_held_request_leaves_with_tokens_and_the_app_gets_its_values(
    review_gw: ReviewGateway,
) -> None:
    gw = review_gw
    review_id = held(gw)
    with gw.client(gw.reviewer) as rita:
        assert rita.post(f"/admin/reviews/{review_id}/claim").status_code == 200
        decided = rita.post(f"/admin/reviews/{review_id}/decide", json={"verdict": "approve"})
    assert decided.status_code == 200, decided.text
    with gw.client(gw.analyst) as alice:
        outcome = alice.get(f"/w/tokens/v1/reviews/{review_id}").json()
    # The fake upstream echoes the prompt: the model saw the token, the app gets its value.
    said = outcome["answer"]["choices"][0]["message"]["content"]
    assert EMAIL in said
    assert PHONE not in said


def test_reveal_is_granted_per_workflow(review_gw: ReviewGateway) -> None:
    """rita is granted reveal by tokens_b (by subject) and not by tokens; vera by tokens (by
    role) and not by tokens_b: each reveals only the items of the workflow granting them."""
    gw = review_gw
    in_a, in_b = held(gw, "tokens"), held(gw, "tokens_b")
    with gw.client(gw.reviewer) as rita, gw.client(gw.revealer) as vera:
        for who, allowed, denied in ((rita, in_b, in_a), (vera, in_a, in_b)):
            refused = _reveal(who, denied)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "review.reveal_denied"
            assert EMAIL not in refused.text
            shown = _reveal(who, allowed)
            assert shown.status_code == 200, shown.text
            assert EMAIL in shown.text
    assert [(r, s) for r, s, _ in reveals(gw, in_a)] == [
        ("review.reveal_denied", "rita"), ("review.revealed", "vera"),
    ]  # fmt: skip
    assert [(r, s) for r, s, _ in reveals(gw, in_b)] == [
        ("review.revealed", "rita"), ("review.reveal_denied", "vera"),
    ]  # fmt: skip


def test_the_grant_is_read_from_the_live_policy(
    upstream: FakeUpstream, hook: Hook, tmp_path: Path
) -> None:
    """A reload that removes a workflow's grant refuses the next reveal of an item queued
    while it stood: the grant is the policy's as loaded now, not the item's."""
    gw = start_review_gateway(tmp_path, upstream, hook)
    try:
        review_id = held(gw, "tokens_b")
        with gw.client(gw.reviewer) as rita:
            assert _reveal(rita, review_id).status_code == 200
            policy = review_policies(hook.url)["tokens_b"]
            write_yaml(
                tmp_path / "policies" / "tokens_b.yaml",
                {**policy, "review": {**policy["review"], "reveal": []}},  # type: ignore[dict-item]
            )
            with gw.client(gw.admin) as root:
                assert root.post("/admin/policies/reload").status_code == 200
            refused = _reveal(rita, review_id)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "review.reveal_denied"
        assert [r for r, _, _ in reveals(gw, review_id)] == [
            "review.revealed", "review.reveal_denied",
        ]  # fmt: skip
    finally:
        gw.server.stop()


def test_the_gateway_wide_reveal_role_is_refused_with_where_it_went(tmp_path: Path) -> None:
    config = write_yaml(
        tmp_path / "gateway.yaml",
        {"providers": {"demo": {"type": "mock"}}, "models": {},
         "console": {"roles": {"reveal": "reveal"}}},
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"review\.reveal"):
        load_config(config, {})
