"""Reveal in the console: only a session the item's workflow grants ``review.reveal`` sees the
form and the values, with a reason and the session's CSRF token; the values are on that one
answer, never kept."""

from __future__ import annotations

from tests.console.conftest import Console
from tests.review.conftest import ReviewGateway
from tests.review.test_reveal import EMAIL, PHONE, held


def test_only_the_granted_reveal_in_the_console(console_gw: ReviewGateway) -> None:
    gw = console_gw
    review_id = held(gw)
    rita, vera = Console(gw.url, gw.reviewer), Console(gw.url, gw.revealer)
    try:
        page = rita.get(f"review?id={review_id}").text
        assert "&lt;EMAIL_ADDRESS#" in page  # the token, escaped
        assert 'class="reveal"' not in page  # no form: tokens does not grant rita
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


def test_the_reveal_form_follows_each_items_workflow(console_gw: ReviewGateway) -> None:
    """rita is granted reveal by tokens_b, vera by tokens: each sees the form only on the
    items of the workflow granting them, and the console refuses the other."""
    gw = console_gw
    in_a, in_b = held(gw, "tokens"), held(gw, "tokens_b")
    rita, vera = Console(gw.url, gw.reviewer), Console(gw.url, gw.revealer)
    try:
        for who, allowed, denied in ((rita, in_b, in_a), (vera, in_a, in_b)):
            assert 'class="reveal"' in who.get(f"review?id={allowed}").text
            assert 'class="reveal"' not in who.get(f"review?id={denied}").text
            refused = who.post("reveal", {"id": denied, "why": "ticket 7"})
            assert refused.status_code == 403
            assert EMAIL not in refused.text
            shown = who.post("reveal", {"id": allowed, "why": "ticket 7"})
            assert shown.status_code == 200
            assert EMAIL in shown.text
    finally:
        rita.close()
        vera.close()
