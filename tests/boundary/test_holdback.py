"""The hold-back window: a streamed text, cut anywhere, comes out as the whole text does."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.boundary import DetectionSpec, build_detector
from gateway.boundary.actions import Rewriter, TokenMinter, restore_tokens
from gateway.boundary.holdback import HoldBack

DETECTOR = build_detector(
    DetectionSpec(
        frozenset({"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IP_ADDRESS"})
    ),
    None,
)
ACTIONS = {
    "EMAIL_ADDRESS": "mask",
    "PHONE_NUMBER": "redact",
    "CREDIT_CARD": "block",
    "US_SSN": "mask",
    "IP_ADDRESS": "tokenize",
}
MINTER = TokenMinter(b"k" * 32)
TOKEN = MINTER.token("w", "EMAIL_ADDRESS", "ann@example.com")
KNOWN = {TOKEN: "ann@example.com"}

WORDS = st.sampled_from(
    [
        "hello", "order", "1234-5678", "v1.2.3", "call", "+44 20 7946 0958", "mail",
        "jane.doe@acme-corp.com", "bob@example.org", "ssn", "536-22-8947", "host",
        "203.0.113.42", "card", "4111 1111 1111 1111", TOKEN, "2024-03-01", ",", "\n",
    ]
)  # fmt: skip
TEXTS = st.lists(WORDS, min_size=1, max_size=40).map(" ".join)


def _whole(text: str) -> tuple[str, dict[str, int]]:
    rw = Rewriter(ACTIONS, "w", MINTER)  # type: ignore[arg-type]
    out = rw.answer_text(text, DETECTOR.find(text), 0, len(text))
    return restore_tokens(out, KNOWN), rw.blocked()


def _streamed(text: str, cuts: list[int], window: int) -> tuple[str, dict[str, int]]:
    rw = Rewriter(ACTIONS, "w", MINTER)  # type: ignore[arg-type]
    hold = HoldBack(DETECTOR, rw.answer_text, window)
    bounds = [0, *sorted(set(cuts)), len(text)]
    out = [hold.feed(text[a:b]) for a, b in itertools.pairwise(bounds)]
    out.append(hold.finish())
    return restore_tokens("".join(out), KNOWN), rw.blocked()


@settings(max_examples=300)
@given(TEXTS, st.data(), st.sampled_from([48, 64, 256]))
def test_streamed_output_equals_whole_text_output(
    text: str, data: st.DataObject, window: int
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=len(text)))
    whole, blocked = _whole(text)
    streamed, stream_blocked = _streamed(text, cuts, window)
    assert stream_blocked == blocked
    assert streamed == whole


@given(TEXTS)
def test_every_single_split_point(text: str) -> None:
    whole = _whole(text)
    for cut in range(len(text) + 1):
        assert _streamed(text, [cut], 48) == whole


def test_text_is_held_only_up_to_the_window() -> None:
    hold = HoldBack(DETECTOR, Rewriter(ACTIONS, "w", MINTER).answer_text, 32)  # type: ignore[arg-type]
    assert hold.feed("x" * 20) == ""
    released = hold.feed("y" * 40)
    assert released == "x" * 20 + "y" * 8
    assert hold.finish() == "y" * 32
