"""What detection yields, whatever finds it: the one shape the actions step reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Detector", "Finding"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value: ``text[start:end]`` of the text as the client sent it.

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
