"""The hold-back window: a streamed text, cut anywhere, comes out as the whole text does."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import errors
from gateway.boundary import DetectionSpec, build_detector
from gateway.boundary.actions import Rewriter, TokenMinter, restore_tokens
from gateway.boundary.holdback import HoldBack
from gateway.errors import GatewayError

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


# --- secrets longer than the window --------------------------------------------------------

SECRETS = build_detector(DetectionSpec(frozenset({"SECRET", "EMAIL_ADDRESS"})), None)
SECRET_ACTIONS = {"SECRET": "mask", "EMAIL_ADDRESS": "mask"}
_B64 = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0"
LONG_SECRETS = {
    "pem": "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(_B64[i:] + _B64[:i] for i in range(0, 60, 6))
    + "\n-----END RSA PRIVATE KEY-----",
    "jwt": "eyJhbGciOiJSUzI1NiJ9.eyJ"
    + "zdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6" * 12
    + ".Sfl"
    + "KxwRJSMeKKF2QT4" * 8,
    "connection": "postgresql://app:" + "Zq8vT2pLm4Xr9Wk3" * 12 + "@db.internal:5432/prod",
    "assignment": 'password = "' + "hX7#kP2@qL9!mV4$" * 10 + '"',
    "openai": "sk-proj-" + "N5KXSc7Tvo-hBKqFYY-kv5ZJr3J1TWDtkwtDD" * 3,
    "github": "ghp_vJDCTbyvHNsG9eh6Yo4gfqrc5XlrWi0B26R0",
}


def _secret_streamed(text: str, cuts: list[int], window: int, bound: int = 16384) -> str:
    rw = Rewriter(SECRET_ACTIONS, "w", MINTER)  # type: ignore[arg-type]
    hold = HoldBack(SECRETS, rw.answer_text, window, bound)
    bounds = [0, *sorted(set(cuts)), len(text)]
    out = [hold.feed(text[a:b]) for a, b in itertools.pairwise(bounds)]
    out.append(hold.finish())
    return "".join(out)


def _secret_whole(text: str) -> str:
    rw = Rewriter(SECRET_ACTIONS, "w", MINTER)  # type: ignore[arg-type]
    return rw.answer_text(text, SECRETS.find(text), 0, len(text))


def _pieces(text: str) -> list[str]:
    # What must never reach the caller: any 12 characters of a secret found in the whole text.
    values = [text[f.start : f.end] for f in SECRETS.find(text) if f.entity == "SECRET"]
    assert values
    return [v[i : i + 12] for v in values for i in range(0, max(1, len(v) - 12), 6)]


@pytest.mark.parametrize("kind", sorted(LONG_SECRETS))
def test_a_long_secret_is_caught_whole_at_every_split_point(kind: str) -> None:
    text = f"Here it is:\n{LONG_SECRETS[kind]}\nkeep it safe, ann@example.com"
    whole = _secret_whole(text)
    assert "<SECRET_1>" in whole
    for cut in range(len(text) + 1):
        assert _secret_streamed(text, [cut], 32) == whole, cut


@settings(max_examples=200)
@given(st.sampled_from(sorted(LONG_SECRETS)), st.data(), st.sampled_from([32, 48, 64]))
def test_a_long_secret_streamed_in_any_pieces_comes_out_masked(
    kind: str, data: st.DataObject, window: int
) -> None:
    text = f"config: {LONG_SECRETS[kind]} done"
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=60))
    streamed = _secret_streamed(text, cuts, window)
    assert streamed == _secret_whole(text)
    assert not any(piece in streamed for piece in _pieces(text))


@pytest.mark.parametrize("kind", ["pem", "jwt", "connection"])
def test_past_the_bound_the_stream_ends_without_the_rest(kind: str) -> None:
    text = f"start {LONG_SECRETS[kind]} end"
    rw = Rewriter(SECRET_ACTIONS, "w", MINTER)  # type: ignore[arg-type]
    hold = HoldBack(SECRETS, rw.answer_text, 32, bound=200)
    released: list[str] = []

    def stream() -> None:
        for i in range(0, len(text), 7):
            released.append(hold.feed(text[i : i + 7]))

    with pytest.raises(GatewayError) as caught:
        stream()
    assert caught.value.reason is errors.BOUNDARY_BLOCKED_OUTPUT
    assert "".join(released) == "start "[: len("".join(released))]


def test_shadow_mode_never_ends_a_stream_for_a_long_secret() -> None:
    """Shadow judges and never enforces: past the bound the stream goes on (no refusal)."""
    text = f"start {LONG_SECRETS['pem']} end"
    rw = Rewriter(SECRET_ACTIONS, "w", MINTER)  # type: ignore[arg-type]
    hold = HoldBack(SECRETS, rw.answer_text, 32, bound=200, hold_secrets=False)
    released = [hold.feed(text[i : i + 7]) for i in range(0, len(text), 7)]
    released.append(hold.finish())
    assert "".join(released) == _secret_whole(text)
