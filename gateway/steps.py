"""The steps of the request path, the decisions they record, and the one function that turns
those decisions into what the gateway decided.

A leaf module (it imports only the reason catalogue): the context, every step, the audit record,
the candidate judge and the offline tools all speak of steps and outcomes through it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from gateway.errors import BOUNDARY_MASKED

__all__ = ["Decision", "Outcome", "Step", "Verdict", "decide"]

Outcome = Literal["allow", "transform", "deny", "error"]

_RANK: dict[str, int] = {"allow": 0, "transform": 1, "deny": 2, "error": 3}
# The boundary's own code for "changed what left": the header and the record call it masked.
_MASKED = BOUNDARY_MASKED.code


class Step(StrEnum):
    """The request path's steps, in the order a request meets them (gateway/pipeline.py).

    ``GATEWAY`` is not a step: it names a refusal made outside them (routing, body size, an
    unexpected error) and the time before the first step begins.
    """

    GATEWAY = "gateway"
    AUTHENTICATE = "authenticate"
    RESOLVE_POLICY = "resolve_policy"
    READ_REQUEST = "read_request"
    ACCESS = "access"
    LIMITS = "limits"
    BOUNDARY = "boundary"
    FORWARD = "forward"
    QUALITY = "quality"
    FALLBACK = "fallback"
    INSPECT_ANSWER = "inspect_answer"
    RELAY = "relay"
    AUDIT = "audit"


@dataclass(frozen=True, slots=True)
class Decision:
    """One step's verdict: ``code`` is a reason code for anything but a plain allow."""

    step: Step
    outcome: Outcome
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the gateway decided for one request, and the views of it each reader shows.

    ``outcome`` is the worst outcome any step reached and ``deciding`` the first decision
    that reached it (None: nothing but plain allows). ``last_change`` is the last decision
    that changed or refused the request and ``last_note`` the last coded allow (such as
    ``quality.unchecked``): the header names those, because they are what the client saw.
    """

    outcome: Outcome
    deciding: Decision | None
    last_change: Decision | None
    last_note: Decision | None
    reasons: tuple[str, ...]

    @property
    def decision(self) -> str:
        """The audit record's and the candidates' word: ``outcome``, but ``masked`` when the
        data boundary's transform decided it."""
        d = self.deciding
        if d is not None and d.outcome == "transform" and d.step == Step.BOUNDARY:
            return "masked"
        return self.outcome

    @property
    def header(self) -> str:
        """The ``x-gateway-decision`` value: the last change or refusal with its reason code
        (``masked`` when the data boundary changed what was sent or answered); only when there
        is none, the last note that let it pass (``allow; reason=quality.unchecked``)."""
        d = self.last_change
        if d is not None:
            return "masked" if d.code == _MASKED else f"{d.outcome}; reason={d.code}"
        return f"allow; reason={self.last_note.code}" if self.last_note else "allow"


def decide(decisions: Iterable[Decision]) -> Verdict:
    """The outcome of ``decisions`` (in the order the steps made them), in one pass."""
    if not decisions:  # an empty list or tuple: most requests, asked two or three times each
        return _ALLOWED
    worst: Outcome = "allow"
    deciding = change = note = None
    reasons: list[str] = []
    for d in decisions:
        if _RANK[d.outcome] > _RANK[worst]:
            worst, deciding = d.outcome, d
        if d.code is not None:
            reasons.append(d.code)
            if d.outcome == "allow":
                note = d
            else:
                change = d
    return Verdict(worst, deciding, change, note, tuple(reasons))


_ALLOWED = Verdict("allow", None, None, None, ())
