"""A candidate policy judged on live traffic, in shadow: it decides and is recorded, never acts.

It sees what the live policy sees (the principal, the endpoint, the parsed request before any
step changed it) and runs its own access checks and detector; it never touches the request,
the vault or the upstream, and it never refuses. Only the request side is judged: answers
come from one upstream call made under the live policy.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway import errors
from gateway.access import check_caller, check_request
from gateway.auth.principal import Principal
from gateway.boundary.batch import find_many
from gateway.boundary.ner import NerUnavailableError
from gateway.boundary.record import by_action
from gateway.boundary.step import _media_refusal
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.policy.models import DataAction
from gateway.rollout.verdict import policy_verdict
from gateway.steps import Decision, Outcome, Step

__all__ = ["CandidateVerdict", "judge_caller", "judge_request", "settle"]


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

    def recorded(self, ctx: RequestContext) -> dict[str, Any]:
        """The audit record's ``candidate`` field (a pending candidate settled first): version
        and decision always, entity counts only where they differ from the live ones;
        ``differs`` says whether anything does."""
        if self.pending is not None:
            settle(self, ctx)
        live = policy_verdict(ctx.decisions)
        live_entities = ctx.boundary.request if ctx.boundary else {}
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


def judge_caller(
    candidate: CompiledPolicy, principal: Principal, endpoint: str
) -> CandidateVerdict:
    """The candidate's caller check (roles, subjects, teams, endpoint)."""
    verdict = CandidateVerdict(candidate.version)
    try:
        check_caller(candidate.access, principal, endpoint)
    except GatewayError as exc:
        verdict.add(Step.ACCESS, "deny", exc.reason.code)
    return verdict


async def judge_request(
    verdict: CandidateVerdict,
    candidate: CompiledPolicy,
    request: NormalizedRequest,
    live: CompiledPolicy,
) -> None:
    """The candidate's request checks and data rules, on the request as the client sent it.

    Call it before the live steps change the request (ceiling, boundary rewrites). When the
    candidate detects what the live policy detects, its data rules are applied to the live
    findings when the record is made (``settle``): no second detection."""
    verdict.request_read = True
    if verdict.denied:
        return
    try:  # on a copy of the top-level body: a ceiling would be written into it
        copy = dataclasses.replace(request, body=dict(request.body))
        changed = check_request(candidate.access, copy)
    except GatewayError as exc:
        verdict.add(Step.ACCESS, "deny", exc.reason.code)
        return
    if changed is not None:
        verdict.add(Step.ACCESS, "transform", changed.code)
    rules = candidate.data
    if rules is None:
        return
    refusal = _media_refusal(request, rules)
    if refusal is not None:
        verdict.add(
            *_outcome(candidate, "deny", refusal.reason.code, errors.BOUNDARY_WOULD_BLOCK.code)
        )
        return
    if live.data is not None and rules.detector is live.data.detector:
        verdict.pending = candidate
        return
    try:
        found = await find_many(rules.detector, [slot.text for slot in request.texts])
    # The candidate's detector failing says something about the candidate, never about
    # whether live traffic may pass.
    except DETECTOR_FAILURES:
        _detector_failed(verdict, candidate)
        return
    _apply(verdict, candidate, ((f.entity, 1) for findings in found for f in findings))


def settle(verdict: CandidateVerdict, ctx: RequestContext) -> None:
    """Apply a pending candidate's data rules to what the live boundary found; if it never
    inspected the request (refused before it, media refused, detection failed), the request's
    text is still as the client sent it, so it is inspected here."""
    candidate, verdict.pending = verdict.pending, None
    if candidate is None or candidate.data is None:
        return
    live = ctx.boundary
    inspected = (
        live is not None
        and not live.detector_error
        and not any(d.step == Step.BOUNDARY and d.code in _MEDIA for d in ctx.decisions)
    )
    if live is not None and inspected:
        _apply(
            verdict, candidate, ((e, n) for per in live.request.values() for e, n in per.items())
        )
        return
    if ctx.request is None:
        return
    try:
        found = [candidate.data.detector.find(slot.text) for slot in ctx.request.texts]
    except DETECTOR_FAILURES:  # as in judge_request
        _detector_failed(verdict, candidate)
        return
    _apply(verdict, candidate, ((f.entity, 1) for findings in found for f in findings))


# How detection fails: regexes, presidio recognizers and the NER model raise these on input
# they cannot handle (a bad span, a recursion limit, a model that cannot load or allocate).
# Anything else is a bug of the gateway's own and propagates: the live request fails as a 500
# instead of a candidate silently recording "detector failed".
DETECTOR_FAILURES: tuple[type[Exception], ...] = (
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    ArithmeticError,
    RuntimeError,
    OSError,
    MemoryError,
    NerUnavailableError,
)
_MEDIA = frozenset({errors.BOUNDARY_IMAGE.code, errors.BOUNDARY_UNREADABLE.code})


def _detector_failed(verdict: CandidateVerdict, candidate: CompiledPolicy) -> None:
    assert candidate.data is not None
    if candidate.data.source.on_detector_error == "block":
        verdict.add(*_outcome(candidate, "error", errors.BOUNDARY_DETECTOR.code, None))
    else:
        verdict.add(Step.BOUNDARY, "allow", errors.BOUNDARY_DETECTOR.code)


def _apply(
    verdict: CandidateVerdict, candidate: CompiledPolicy, found: Iterable[tuple[str, int]]
) -> None:
    """The candidate's actions on entity counts, as its own ``mode`` would give them."""
    assert candidate.data is not None
    counts: Counter[tuple[DataAction, str]] = Counter()
    for entity, n in found:
        counts[(candidate.data.action(entity), entity)] += n
    verdict.entities = by_action(counts)
    if any(action == "block" for action, _ in counts):
        verdict.add(
            *_outcome(
                candidate, "deny", errors.BOUNDARY_BLOCKED.code, errors.BOUNDARY_WOULD_BLOCK.code
            )
        )
    elif any(action in ("mask", "redact", "tokenize") for action, _ in counts):
        verdict.add(
            *_outcome(
                candidate, "transform", errors.BOUNDARY_MASKED.code, errors.BOUNDARY_WOULD_MASK.code
            )
        )


def _outcome(
    candidate: CompiledPolicy, outcome: Outcome, code: str, shadow_code: str | None
) -> tuple[Step, Outcome, str | None]:
    """A data decision as the candidate's own ``mode`` would give it."""
    if candidate.source.mode == "enforce":
        return Step.BOUNDARY, outcome, code
    return Step.BOUNDARY, "allow", shadow_code or code
