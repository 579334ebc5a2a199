"""A policy's own verdict on a request: ``decide`` over the steps a policy decides.

Used by the candidate judge (gateway/rollout/shadow.py) for both the candidate and the live
policy, so the two are compared the same way the audit record speaks of decisions.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.steps import Decision, Step, decide

__all__ = ["POLICY_STEPS", "policy_verdict"]

# The steps whose verdicts a policy makes on the request (authentication and the upstream
# are not the policy's to decide; answers are not re-run for candidates).
POLICY_STEPS = frozenset({Step.ACCESS, Step.BOUNDARY})


def policy_verdict(decisions: Iterable[Decision]) -> tuple[str, list[str]]:
    """``(decision, reasons)`` of ``decide`` over the request-side policy steps: the worst
    outcome (``masked`` for the boundary's transform) and every code in order."""
    verdict = decide(d for d in decisions if d.step in POLICY_STEPS)
    return verdict.decision, list(verdict.reasons)
