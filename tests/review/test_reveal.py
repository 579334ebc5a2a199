"""Revealing tokenized values: a reviewer's copy holds the policy's tokens, never the values;
only a credential holding the console's reveal role reads them, with a reason, and every
reveal is an audit record naming who and why (the why masked like any text)."""

from __future__ import annotations

import re

import httpx

from tests.review.conftest import ReviewGateway
from tests.review.test_queue import ask, records

EMAIL, PHONE = "vera.client@example.org", "+1 415 555 0134"


def held(gw: ReviewGateway) -> str:
    raw = ask(gw, "tokens", f"Write to {EMAIL} and call {PHONE} about the refund")
    assert raw.http_response.status_code == 202
    review_id: str = raw.headers["x-gateway-review-id"]
    return review_id


def _reveal(
    client: httpx.Client, review_id: str, why: str = "ticket 88 needs it"
) -> httpx.Response:
    return client.post(f"/admin/reviews/{review_id}/reveal", json={"why": why})


def test_a_reviewer_sees_tokens_and_only_the_reveal_role_reads_their_values(
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
    for key in (gw.reviewer, gw.admin):  # reviewers and admins without the reveal role
        with gw.client(key) as c:
            refused = _reveal(c, review_id)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "review.reveal_denied"
        assert EMAIL not in refused.text
    with gw.client(gw.auditor) as audrey, httpx.Client(base_url=gw.url) as anon:
        assert _reveal(audrey, review_id).status_code == 403
        assert _reveal(anon, review_id).status_code == 401
    # A refusal reveals nothing, so no reveal is recorded.
    assert not [r for r in records(gw) if r.reasons == ["review.revealed"]]
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
