"""Rewrite a text's findings: typed placeholders, redaction and reversible tokens.

Pure functions over a text and its ``Finding``s, plus the per-request state that keeps
placeholders numbered consistently (the same value gets the same number in one request).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from gateway.boundary.findings import Finding
from gateway.policy.models import DataAction

__all__ = [
    "REDACTED",
    "TOKEN_PATTERN",
    "Rewriter",
    "TokenMinter",
    "restore_tokens",
    "rewrite",
]

REDACTED = "[REDACTED]"
# <EMAIL_ADDRESS#k3j9x2qa7mb4>: the entity name, then 60 bits of a keyed HMAC in base32.
TOKEN_PATTERN = re.compile(r"<([A-Z][A-Z0-9_]{0,63})#([a-z2-7]{12})>")


def rewrite(
    text: str,
    findings: Iterable[Finding],
    replace: Callable[[Finding, str], str | None],
    start: int = 0,
    end: int | None = None,
) -> str:
    """``text[start:end]`` with each finding (sorted, inside the range) replaced by
    ``replace(finding, value)``; a ``None`` keeps the value."""
    end = len(text) if end is None else end
    out: list[str] = []
    at = start
    for f in findings:
        fs = max(f.start, start)
        substitute = replace(f, text[f.start : f.end])
        if substitute is None:
            continue
        out += (text[at:fs], substitute)
        at = min(f.end, end)
    out.append(text[at:end])
    return "".join(out)


class TokenMinter:
    """Tokens that are stable for one value in one workflow, and unguessable without the key.

    >>> TokenMinter(b"k" * 32).token("lead_triage", "EMAIL_ADDRESS", "ann@example.com")
    '<EMAIL_ADDRESS#...>'
    """

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def token(self, workflow: str, entity: str, value: str) -> str:
        mac = self._mac.copy()
        mac.update(f"{workflow}\0{entity}\0{value}".encode())
        digest = base64.b32encode(mac.digest()[:8]).decode().lower()[:12]
        return f"<{entity}#{digest}>"


class Rewriter:
    """One request's rewriting: placeholder numbers, minted tokens and counts per action.

    ``counts`` holds ``(action, entity) -> n`` for every finding, blocked ones included;
    ``minted`` maps each token this request issued to its value.
    """

    def __init__(
        self,
        actions: Mapping[str, DataAction],
        workflow: str,
        minter: TokenMinter,
    ) -> None:
        self._actions = actions
        self._workflow = workflow
        self._minter = minter
        self._numbers: dict[tuple[str, str], int] = {}
        self._per_entity: Counter[str] = Counter()
        self.counts: Counter[tuple[DataAction, str]] = Counter()
        self.rules: set[str] = set()
        self.minted: dict[str, str] = {}

    def placeholder(self, entity: str, value: str) -> str:
        n = self._numbers.get((entity, value))
        if n is None:
            self._per_entity[entity] += 1
            n = self._numbers[(entity, value)] = self._per_entity[entity]
        return f"<{entity}_{n}>"

    def request_text(self, text: str, findings: list[Finding]) -> str:
        """The text as it may leave: every finding handled by its entity's action."""
        return rewrite(text, findings, lambda f, value: self._replace(f, value, tokenize=True))

    def answer_text(self, text: str, findings: list[Finding], start: int, end: int) -> str:
        """Model output for the caller: mask and redact apply; a tokenized entity is the
        caller's own data and stays; blocked ones are counted (the step ends the answer)."""
        return rewrite(
            text, findings, lambda f, value: self._replace(f, value, tokenize=False), start, end
        )

    def _replace(self, f: Finding, value: str, *, tokenize: bool) -> str | None:
        """The replacement for one finding, counted; None leaves it (allow, or block: the
        step refuses the whole request or ends the answer)."""
        action = self._actions.get(f.entity, "block")
        self.counts[(action, f.entity)] += 1
        self.rules.add(f.rule)
        if action == "mask":
            return self.placeholder(f.entity, value)
        if action == "redact":
            return REDACTED
        if action == "tokenize" and tokenize:
            token = self._minter.token(self._workflow, f.entity, value)
            self.minted[token] = value
            return token
        return None

    def blocked(self) -> dict[str, int]:
        return {entity: n for (action, entity), n in self.counts.items() if action == "block"}


def restore_tokens(text: str, values: Mapping[str, str]) -> str:
    """Each known token replaced by its value; unknown ones are left as they are."""
    if "#" not in text:
        return text
    return TOKEN_PATTERN.sub(lambda m: values.get(m.group(0), m.group(0)), text)
