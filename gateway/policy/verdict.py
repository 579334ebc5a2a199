"""What a candidate policy would have decided for one request, next to what the live one did.

Shared by the live shadow evaluation (gateway/policy/shadow.py) and ``gateway policy replay``
(gateway/policy/replay.py), so both speak of decisions the same way the audit record does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.policy.compile import CompiledPolicy

__all__ = ["POLICY_STEPS", "CandidateVerdict", "policy_verdict"]

# The steps whose verdicts a policy makes on the request (authentication and the upstream
# are not the policy's to decide; answers are not re-run for candidates).
POLICY_STEPS = frozenset({"access", "boundary"})
_RANK = {"allow": 0, "transform": 1, "masked": 1, "deny": 2, "error": 3}


def policy_verdict(decisions: Iterable[tuple[str, str, str | None]]) -> tuple[str, list[str]]:
    """``(decision, reasons)`` over the request-side policy steps of ``(step, outcome, code)``:
    the worst outcome (``masked`` for the boundary's transform) and every code in order."""
    worst, reasons = "allow", []
    for step, outcome, code in decisions:
        if step not in POLICY_STEPS:
            continue
        if code is not None:
            reasons.append(code)
        verdict = "masked" if (step, outcome) == ("boundary", "transform") else outcome
        if _RANK[verdict] > _RANK[worst]:
            worst = verdict
    return worst, reasons


@dataclass(slots=True)
class CandidateVerdict:
    """The candidate's verdict on one request. ``request_read`` False: the live policy refused
    the caller before the body was read, so only the caller check could be made."""

    version: str
    decisions: list[tuple[str, str, str | None]] = field(default_factory=list)
    entities: dict[str, dict[str, int]] = field(default_factory=dict)  # request side
    request_read: bool = False
    # The candidate whose data rules are still to be applied to the live findings (it
    # shares the live detector): done when the record is made (shadow.settle).
    pending: CompiledPolicy | None = None

    def add(self, step: str, outcome: str, code: str | None) -> None:
        self.decisions.append((step, outcome, code))

    @property
    def denied(self) -> bool:
        return any(o in ("deny", "error") for _, o, _ in self.decisions)

    def record(
        self, live: tuple[str, list[str]], live_entities: dict[str, dict[str, int]]
    ) -> dict[str, Any]:
        """The audit record's ``candidate`` field: version and decision always, entity counts
        only where they differ from the live ones; ``differs`` says whether anything does."""
        decision, reasons = policy_verdict(self.decisions)
        out: dict[str, Any] = {"version": self.version, "decision": decision, "reasons": reasons}
        differs = (decision, reasons) != live
        if self.request_read and self.entities != live_entities:
            out["entities"] = self.entities
            differs = True
        if not self.request_read:
            out["request_read"] = False
        out["differs"] = differs
        return out
