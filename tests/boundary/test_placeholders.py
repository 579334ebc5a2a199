"""Keyed placeholders (``data.placeholders: keyed``): one value masks to one placeholder in
every request of a workflow, whatever else the prompt holds, and nobody without the key can
tell which value it stands for."""

from __future__ import annotations

import re

from gateway.boundary import Finding
from gateway.boundary.actions import TOKEN_PATTERN, Rewriter, TokenMinter

ACTIONS = {"EMAIL_ADDRESS": "mask", "IP_ADDRESS": "tokenize"}
KEY = b"k" * 32
KEYED = re.compile(r"<EMAIL_ADDRESS_[a-z2-7]{6}>")


def _masked(rw: Rewriter, text: str, *values: str) -> str:
    found = []
    for value in values:
        at = text.index(value)
        found.append(Finding(at, at + len(value), "EMAIL_ADDRESS", 0.9, "email"))
    return rw.request_text(text, sorted(found, key=lambda f: f.start))


def _rewriter(key: bytes = KEY, workflow: str = "w") -> Rewriter:
    return Rewriter(ACTIONS, workflow, TokenMinter(key), keyed=True)  # type: ignore[arg-type]


def test_a_value_keeps_its_placeholder_whatever_comes_before_it() -> None:
    first = _masked(_rewriter(), "mail ann@x.io", "ann@x.io")
    assert KEYED.fullmatch(first.removeprefix("mail "))
    # Another request: a new value comes first, earlier ones are gone.
    later = _masked(_rewriter(), "cc bob@x.io and ann@x.io", "bob@x.io", "ann@x.io")
    assert later.endswith(" and " + first.removeprefix("mail "))
    assert later.split(" and ")[0] != "cc " + first.removeprefix("mail ")


def test_the_placeholder_depends_on_the_key_and_the_workflow_not_on_the_process() -> None:
    same = _masked(_rewriter(), "ann@x.io", "ann@x.io")
    assert _masked(_rewriter(bytes(KEY)), "ann@x.io", "ann@x.io") == same  # another instance
    assert _masked(_rewriter(b"j" * 32), "ann@x.io", "ann@x.io") != same
    assert _masked(_rewriter(workflow="other"), "ann@x.io", "ann@x.io") != same


def test_it_never_spells_the_values_token() -> None:
    minter = TokenMinter(KEY)
    token = TOKEN_PATTERN.fullmatch(minter.token("w", "EMAIL_ADDRESS", "ann@x.io"))
    placeholder = minter.keyed_placeholder("w", "EMAIL_ADDRESS", "ann@x.io", 12)
    assert token is not None and token.group(2) not in placeholder


def test_two_values_sharing_a_short_code_get_different_placeholders() -> None:
    rw = _rewriter()
    minter = TokenMinter(KEY)
    # Find two values whose 6-character codes collide (30 bits: a few ten thousand tries).
    seen: dict[str, str] = {}
    pair: tuple[str, str] | None = None
    for i in range(400_000):
        value = f"u{i}@x.io"
        short = minter.keyed_placeholder("w", "EMAIL_ADDRESS", value)
        if short in seen:
            pair = (seen[short], value)
            break
        seen[short] = value
    assert pair is not None
    a, b = pair
    masked = _masked(rw, f"{a} {b}", a, b)
    first, second = masked.split(" ")
    assert first != second and len(second) == len(first) + 6


def test_numbered_placeholders_are_the_default() -> None:
    rw = Rewriter(ACTIONS, "w", TokenMinter(KEY))  # type: ignore[arg-type]
    assert _masked(rw, "ann@x.io", "ann@x.io") == "<EMAIL_ADDRESS_1>"
