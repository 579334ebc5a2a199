"""What a candidate policy would have decided for one request, next to what the live one did.

Shared by the live shadow evaluation (gateway/rollout/shadow.py) and ``gateway policy replay``
(gateway/tools/replay.py), so both speak of decisions the same way the audit record does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.policy.compile import CompiledPolicy
from gateway.steps import Decision, Outcome, Step, decide

__all__ = ["POLICY_STEPS", "CandidateVerdict", "policy_verdict"]

# The steps whose verdicts a policy makes on the request (authentication and the upstream
# are not the policy's to decide; answers are not re-run for candidates).
POLICY_STEPS = frozenset({Step.ACCESS, Step.BOUNDARY})


def policy_verdict(decisions: Iterable[Decision]) -> tuple[str, list[str]]:
    """``(decision, reasons)`` of ``decide`` over the request-side policy steps: the worst
    outcome (``masked`` for the boundary's transform) and every code in order."""
    verdict = decide(d for d in decisions if d.step in POLICY_STEPS)
    return verdict.decision, list(verdict.reasons)


@dataclass(slots=True)
class CandidateVerdict:
    """The candidate's verdict on one request. ``request_read`` False: the live policy refused
    the caller before the body was read, so only the caller check could be made."""

    version: str
    decisions: list[Decision] = field(default_factory=list)
    entities: dict[str, dict[str, int]] = field(default_factory=dict)  # request side
    request_read: bool = False
    # The candidate whose data rules are still to be applied to the live findings (it
    # shares the live detector): done when the record is made (shadow.settle).
    pending: CompiledPolicy | None = None

    def add(self, step: Step, outcome: Outcome, code: str | None) -> None:
        self.decisions.append(Decision(step, outcome, code))

    @property
    def denied(self) -> bool:
        return any(d.outcome in ("deny", "error") for d in self.decisions)

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
