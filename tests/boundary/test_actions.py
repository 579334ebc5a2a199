"""Placeholders, redaction and tokens over hand-built findings."""

from __future__ import annotations

from gateway.boundary import Finding
from gateway.boundary.actions import REDACTED, Rewriter, TokenMinter, restore_tokens, rewrite

ACTIONS = {
    "EMAIL_ADDRESS": "mask",
    "PHONE_NUMBER": "redact",
    "IP_ADDRESS": "tokenize",
    "CREDIT_CARD": "block",
}


def _find(text: str, *values: tuple[str, str]) -> list[Finding]:
    found = []
    for entity, value in values:
        start = 0
        while (i := text.find(value, start)) >= 0:
            found.append(Finding(i, i + len(value), entity, 0.9, entity.lower()))
            start = i + len(value)
    return sorted(found, key=lambda f: f.start)


def test_placeholders_are_numbered_per_value_across_texts() -> None:
    rw = Rewriter(ACTIONS, "w", TokenMinter(b"k" * 32))  # type: ignore[arg-type]
    a = "a@x.io b@x.io a@x.io"
    b = "then b@x.io, c@x.io"
    assert rw.request_text(
        a, _find(a, ("EMAIL_ADDRESS", "a@x.io"), ("EMAIL_ADDRESS", "b@x.io"))
    ) == ("<EMAIL_ADDRESS_1> <EMAIL_ADDRESS_2> <EMAIL_ADDRESS_1>")
    assert rw.request_text(
        b, _find(b, ("EMAIL_ADDRESS", "b@x.io"), ("EMAIL_ADDRESS", "c@x.io"))
    ) == ("then <EMAIL_ADDRESS_2>, <EMAIL_ADDRESS_3>")
    assert dict(rw.counts) == {("mask", "EMAIL_ADDRESS"): 5}


def test_redact_block_and_counts() -> None:
    rw = Rewriter(ACTIONS, "w", TokenMinter(b"k" * 32))  # type: ignore[arg-type]
    text = "ring 555 0100, card 4111"
    out = rw.request_text(text, _find(text, ("PHONE_NUMBER", "555 0100"), ("CREDIT_CARD", "4111")))
    assert out == f"ring {REDACTED}, card 4111"  # a block is refused whole by the step
    assert rw.blocked() == {"CREDIT_CARD": 1}
    assert rw.rules == {"phone_number", "credit_card"}


def test_tokens_are_keyed_stable_and_restorable() -> None:
    one, other = TokenMinter(b"1" * 32), TokenMinter(b"2" * 32)
    t = one.token("w", "IP_ADDRESS", "10.0.0.1")
    assert t == one.token("w", "IP_ADDRESS", "10.0.0.1")
    assert t != one.token("v", "IP_ADDRESS", "10.0.0.1")
    assert t != other.token("w", "IP_ADDRESS", "10.0.0.1")
    assert t != one.token("w", "IP_ADDRESS", "10.0.0.2")
    rw = Rewriter(ACTIONS, "w", one)  # type: ignore[arg-type]
    text = "from 10.0.0.1"
    assert rw.request_text(text, _find(text, ("IP_ADDRESS", "10.0.0.1"))) == f"from {t}"
    assert rw.minted == {t: "10.0.0.1"}
    assert restore_tokens(f"at {t}, not <IP_ADDRESS#aaaaaaaaaaaa>", rw.minted) == (
        "at 10.0.0.1, not <IP_ADDRESS#aaaaaaaaaaaa>"
    )


def test_rewrite_a_range_clips_findings_at_its_start() -> None:
    text = "xx a@x.io yy"
    f = _find(text, ("EMAIL_ADDRESS", "a@x.io"))
    assert rewrite(text, f, lambda _f, _v: "<E>", 5, len(text)) == "<E> yy"
