"""What detection yields, whatever finds it: the one shape the actions step reads."""

from __future__ import annotations

from typing import NamedTuple, Protocol

__all__ = ["Detector", "Finding"]


class Finding(NamedTuple):
    """One detected value: ``text[start:end]`` of the text as the client sent it.

    A named tuple, not a frozen dataclass: a hostile body holds hundreds of thousands of
    findings, each built more than once (window offsets, the cache), and a frozen dataclass
    costs three times as much to build (about 3 us against 1).

    ``entity`` is a presidio entity name (``EMAIL_ADDRESS``, ``SECRET``, a custom name);
    ``rule`` is a stable id of what matched (``email``, ``secret.aws_access_key``,
    ``custom.PROJECT_CODE``, ``deny_term``) for the audit trail; never the value itself.
    """

    start: int
    end: int
    entity: str
    score: float
    rule: str


class Detector(Protocol):
    """Finds the entities one policy asks for.

    ``find`` returns findings sorted by ``start`` and not overlapping, with the policy's
    allow list and score thresholds already applied; offsets are in the original text, even
    though matching runs on a normalized copy (NFKC, digits, zero-width characters).
    """

    @property
    def entities(self) -> frozenset[str]: ...

    def find(self, text: str) -> list[Finding]: ...
