"""What the data boundary decided for one request, for the audit trail: never a value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.policy.models import DataAction

__all__ = ["BoundaryRecord", "by_action"]


def by_action(counts: Mapping[tuple[DataAction, str], int]) -> dict[str, dict[str, int]]:
    """``{(action, entity): n}`` as ``{action: {entity: n}}``."""
    out: dict[str, dict[str, int]] = {}
    for (action, entity), n in sorted(counts.items()):
        out.setdefault(action, {})[entity] = n
    return out


@dataclass(slots=True)
class BoundaryRecord:
    """Entity types and counts per action in the request and the answer, and the rule ids
    that matched. In shadow mode the actions are what would have been done."""

    shadow: bool
    request: dict[str, dict[str, int]] = field(default_factory=dict)
    answer: dict[str, dict[str, int]] = field(default_factory=dict)
    rules: set[str] = field(default_factory=set)
    detector_error: bool = False
    uninspectable: int = 0  # parts that could not be read as text (``on_uninspectable``)
