"""Reveal in the console: only a session holding the reveal role sees the form and the values,
with a reason and the session's CSRF token; the values are on that one answer, never kept."""

from __future__ import annotations

from tests.console.conftest import Console
from tests.review.conftest import ReviewGateway
from tests.review.test_reveal import EMAIL, PHONE, held


def test_only_the_reveal_role_reveals_in_the_console(console_gw: ReviewGateway) -> None:
    gw = console_gw
    review_id = held(gw)
    rita, vera = Console(gw.url, gw.reviewer), Console(gw.url, gw.revealer)
    try:
        page = rita.get(f"review?id={review_id}").text
        assert "&lt;EMAIL_ADDRESS#" in page  # the token, escaped
        assert 'class="reveal"' not in page  # no form for a reviewer without the role
        refused = rita.post("reveal", {"id": review_id, "why": "curious"})
        assert refused.status_code == 403
        assert EMAIL not in refused.text
        page = vera.get(f"review?id={review_id}").text
        assert 'class="reveal"' in page
        assert EMAIL not in page
        assert vera.post("reveal", {"id": review_id, "why": "x"}, csrf=False).status_code == 403
        shown = vera.post("reveal", {"id": review_id, "why": "the customer's ticket 12"})
        assert shown.status_code == 200
        assert EMAIL in shown.text
        assert PHONE not in shown.text
        assert "recorded in the audit" in shown.text
        assert shown.headers["cache-control"] == "no-store"
        assert EMAIL not in vera.get(f"review?id={review_id}").text  # masked again
    finally:
        rita.close()
        vera.close()
