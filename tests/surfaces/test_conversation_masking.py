"""Masking across the turns of a conversation, through the gateway and the official SDK: with
keyed placeholders (the default) a value masks to the same text in every later request, even
when the client drops (compacts) earlier turns, a new value comes before it, or another
instance sharing the vault key serves the turn; numbered placeholders
(``data.placeholders: numbered``) keep their number only while the conversation grows by
appending."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import UPSTREAM_KEYS, Gateway
from tests.fakes.upstream import FakeUpstream
from tests.support.placeholders import keyed
from tests.support.server import GatewayServer

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
    """``wire`` names no ``placeholders``: the default is keyed."""
    first, grown, compacted, dropped = _conversation(gateway, upstream, "wire")
    ann, bob, carl = (keyed("wire", "EMAIL_ADDRESS", v) for v in (ANN, BOB, CARL))
    assert _placeholder_after(first, "write to ") == ann
    assert _placeholder_after(grown, "write to ") == ann  # the history resent: unchanged
    assert _placeholder_after(grown, "now cc ") == bob
    assert _placeholder_after(compacted, "now cc ") == bob  # a new value came first
    assert _placeholder_after(compacted, "Summary: ") == carl
    assert _placeholder_after(dropped, "now cc ") == bob  # the turns before it dropped
    assert _placeholder_after(dropped, ", then ") == ann
    assert len({ann, bob, carl}) == 3
    assert not any(v in "".join((first, grown, compacted, dropped)) for v in (ANN, BOB, CARL))


def _instance(gateway: Gateway, root: Path, env: dict[str, str]) -> GatewayServer:
    """Another gateway with the same configuration, keys and policies (its own audit file)."""
    shutil.copytree(gateway.config_dir, root, ignore=shutil.ignore_patterns("audit*"))
    return GatewayServer(root / "gateway.yaml", env).start()


def test_a_turn_dropped_or_served_by_another_instance_masks_the_same(
    gateway: Gateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Turn 1 names Ann; turn 2 puts Bob first; turn 3 drops turn 2 and is served by a second
    instance sharing the vault key: what reaches the model is byte for byte what the first
    instance sends, so the provider's prompt cache still hits. An instance with another key
    masks to other text (what ``GATEWAY_VAULT_KEY`` unset costs: docs/data-boundary.md)."""
    turn1 = [{"role": "user", "content": f"write to {ANN}"}]
    turn2 = [
        {"role": "user", "content": f"cc {BOB} first"},
        *turn1,
        {"role": "assistant", "content": "Done."},
    ]
    turn3 = [
        *turn1,
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": f"and again {ANN}"},
    ]
    ann = keyed("wire", "EMAIL_ADDRESS", ANN)
    assert _sent(gateway, upstream, "wire", turn1) == f"write to {ann}"
    assert _placeholder_after(_sent(gateway, upstream, "wire", turn2), "write to ") == ann
    here = _sent(gateway, upstream, "wire", turn3)
    assert here == f"write to {ann}\nDone.\nand again {ann}"
    twin = _instance(gateway, tmp_path / "twin", dict(UPSTREAM_KEYS))
    stranger = _instance(
        gateway, tmp_path / "stranger", {**UPSTREAM_KEYS, "GATEWAY_VAULT_KEY": "x" * 40}
    )
    try:
        second = Gateway(twin.url, gateway.analyst_key, gateway.ops_key, tmp_path / "twin")
        assert _sent(second, upstream, "wire", turn3) == here
        other = Gateway(stranger.url, gateway.analyst_key, gateway.ops_key, tmp_path / "stranger")
        elsewhere = _sent(other, upstream, "wire", turn3)
        assert ANN not in elsewhere
        assert _placeholder_after(elsewhere, "write to ") != ann
    finally:
        twin.stop()
        stranger.stop()


def test_numbered_placeholders_renumber_when_earlier_turns_go(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    """Why keyed placeholders are the default: numbers follow the prompt's order, so they
    hold while the conversation only grows, and shift when it is compacted."""
    first, grown, compacted, dropped = _conversation(gateway, upstream, "wire_numbered")
    assert _placeholder_after(first, "write to ") == "<EMAIL_ADDRESS_1>"
    assert _placeholder_after(grown, "write to ") == "<EMAIL_ADDRESS_1>"
    assert _placeholder_after(grown, "now cc ") == "<EMAIL_ADDRESS_2>"
    assert _placeholder_after(compacted, "now cc ") == "<EMAIL_ADDRESS_2>"  # by chance: Carl is 1
    assert _placeholder_after(dropped, "now cc ") == "<EMAIL_ADDRESS_1>"  # Bob took Ann's number
