"""Masking across the turns of a conversation, through the gateway and the official SDK: with
``data.placeholders: keyed`` a value masks to the same text in every later request, even when
the client drops (compacts) earlier turns or a new value comes before it; numbered
placeholders (the default) keep their number only while the conversation grows by appending."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Gateway
from tests.fakes.upstream import FakeUpstream

ANN, BOB, CARL = "ann@example.com", "bob@example.com", "carl@example.com"
PLACEHOLDER = re.compile(r"<EMAIL_ADDRESS_[a-z0-9]+>")


def _sent(gateway: Gateway, upstream: FakeUpstream, workflow: str, turns: list[Any]) -> str:
    """What reached the model of the conversation's last request: its messages' text."""
    gateway.openai(workflow).chat.completions.create(model="gpt-test", messages=turns)
    body = upstream.received[-1].body
    return "\n".join(str(m["content"]) for m in body["messages"])


def _placeholder_after(text: str, before: str) -> str:
    """The placeholder that follows ``before`` in ``text``."""
    match = PLACEHOLDER.match(text, text.index(before) + len(before))
    assert match is not None, text
    return match.group(0)


def _conversation(gateway: Gateway, upstream: FakeUpstream, workflow: str) -> list[str]:
    first = [{"role": "user", "content": f"write to {ANN}"}]
    grown = [
        *first,
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": f"now cc {BOB}"},
    ]
    # Compacted: the first turns dropped, a summary with a new value first.
    compacted = [
        {"role": "system", "content": f"Summary: {CARL} was written to."},
        {"role": "user", "content": f"now cc {BOB}"},
    ]
    dropped = [{"role": "user", "content": f"now cc {BOB}, then {ANN}"}]
    return [_sent(gateway, upstream, workflow, t) for t in (first, grown, compacted, dropped)]


def test_keyed_placeholders_hold_across_turns(gateway: Gateway, upstream: FakeUpstream) -> None:
    first, grown, compacted, dropped = _conversation(gateway, upstream, "wire_keyed")
    ann = _placeholder_after(first, "write to ")
    bob = _placeholder_after(grown, "now cc ")
    assert _placeholder_after(grown, "write to ") == ann  # the history resent: unchanged
    assert _placeholder_after(compacted, "now cc ") == bob  # a new value came first
    assert _placeholder_after(dropped, "now cc ") == bob  # the turns before it dropped
    assert _placeholder_after(dropped, ", then ") == ann
    carl = _placeholder_after(compacted, "Summary: ")
    assert len({ann, bob, carl}) == 3
    assert not any(v in "".join((first, grown, compacted, dropped)) for v in (ANN, BOB, CARL))


def test_numbered_placeholders_renumber_when_earlier_turns_go(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    """Why ``keyed`` exists: numbers follow the prompt's order, so they hold while the
    conversation only grows, and shift when it is compacted."""
    first, grown, compacted, dropped = _conversation(gateway, upstream, "wire")
    assert _placeholder_after(first, "write to ") == "<EMAIL_ADDRESS_1>"
    assert _placeholder_after(grown, "write to ") == "<EMAIL_ADDRESS_1>"
    assert _placeholder_after(grown, "now cc ") == "<EMAIL_ADDRESS_2>"
    assert _placeholder_after(compacted, "now cc ") == "<EMAIL_ADDRESS_2>"  # by chance: Carl is 1
    assert _placeholder_after(dropped, "now cc ") == "<EMAIL_ADDRESS_1>"  # Bob took Ann's number
