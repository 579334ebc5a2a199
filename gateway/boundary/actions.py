"""Rewrite a text's findings: typed placeholders, redaction and reversible tokens.

Pure functions over a text and its ``Finding``s, plus the per-request state that keeps
placeholders consistent: numbered (the same value gets the same number in one request, in the
order the provider reads the prompt) or keyed (the same value gets the same placeholder in
every request of the workflow, whatever else the prompt holds: ``data.placeholders: keyed``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
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
        return f"<{entity}#{self._code(workflow, entity, value)}>"

    def keyed_placeholder(self, workflow: str, entity: str, value: str, size: int = 6) -> str:
        """A mask placeholder the same for one value in every request of the workflow:
        ``<EMAIL_ADDRESS_k3j9x2>``. Under its own label, so it never spells a token (a token
        is restored for the caller; a masked value never is)."""
        return f"<{entity}_{self._code(workflow, entity, value, 'mask')[:size]}>"

    def _code(self, workflow: str, entity: str, value: str, label: str = "") -> str:
        mac = self._mac.copy()
        head = f"{label}\0" if label else ""  # tokens keep their unlabelled, stable form
        mac.update(f"{head}{workflow}\0{entity}\0{value}".encode())
        return base64.b32encode(mac.digest()[:8]).decode().lower()[:12]


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
        keyed: bool = False,
    ) -> None:
        self._actions = actions
        self._workflow = workflow
        self._minter = minter
        self._keyed = keyed
        self._numbers: dict[tuple[str, str], int] = {}
        self._per_entity: dict[str, int] = {}
        self._keyed_values: dict[tuple[str, str], str] = {}  # (entity, value) -> placeholder
        self._keyed_taken: dict[str, str] = {}  # placeholder -> the value it stands for
        self.counts: dict[tuple[DataAction, str], int] = {}  # plain dicts: a Counter costs 1 us
        self.rules: set[str] = set()
        self.minted: dict[str, str] = {}

    def placeholder(self, entity: str, value: str) -> str:
        if self._keyed:
            return self._keyed_placeholder(entity, value)
        n = self._numbers.get((entity, value))
        if n is None:
            n = self._numbers[(entity, value)] = self._per_entity.get(entity, 0) + 1
            self._per_entity[entity] = n
        return f"<{entity}_{n}>"

    def _keyed_placeholder(self, entity: str, value: str) -> str:
        known = self._keyed_values.get((entity, value))
        if known is not None:
            return known
        short = self._minter.keyed_placeholder(self._workflow, entity, value)
        other = self._keyed_taken.get(short)
        # Two values of one request sharing 30 bits (about one request in 10^6 with 50
        # values): the later one takes the full 60, so no two values ever read as one.
        if other is not None and other != value:
            short = self._minter.keyed_placeholder(self._workflow, entity, value, 12)
        self._keyed_values[(entity, value)] = short
        self._keyed_taken[short] = value
        return short

    def request_text(
        self, text: str, findings: list[Finding], start: int = 0, end: int | None = None
    ) -> str:
        """The text as it may leave (``text[start:end]``): every finding handled by its
        entity's action."""
        return rewrite(
            text, findings, lambda f, value: self._replace(f, value, tokenize=True), start, end
        )

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
        key = (action, f.entity)
        self.counts[key] = self.counts.get(key, 0) + 1
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
