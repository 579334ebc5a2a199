"""A candidate policy judged on live traffic, in shadow: it decides and is recorded, never acts.

It sees what the live policy sees (the principal, the endpoint, the parsed request before any
step changed it) and runs its own access checks and detector; it never touches the request,
the vault or the upstream, and it never refuses. Only the request side is judged: answers
come from one upstream call made under the live policy.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from gateway.access import check_caller, check_request
from gateway.auth.principal import Principal
from gateway.boundary.record import by_action
from gateway.boundary.scan import find_all
from gateway.boundary.step import _media_refusal
from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.policy.models import DataAction
from gateway.policy.verdict import CandidateVerdict

__all__ = ["judge_caller", "judge_request"]


def judge_caller(
    candidate: CompiledPolicy, principal: Principal, endpoint: str
) -> CandidateVerdict:
    """The candidate's caller check (roles, subjects, teams, endpoint)."""
    verdict = CandidateVerdict(candidate.version)
    try:
        check_caller(candidate.access, principal, endpoint)
    except GatewayError as exc:
        verdict.add("access", "deny", exc.reason.code)
    return verdict


async def judge_request(
    verdict: CandidateVerdict, candidate: CompiledPolicy, request: NormalizedRequest
) -> None:
    """The candidate's request checks and data rules, on the request as the client sent it.

    Call it before the live steps change the request (ceiling, boundary rewrites)."""
    verdict.request_read = True
    if verdict.denied:
        return
    try:  # on a copy of the top-level body: a ceiling would be written into it
        changed = check_request(
            candidate.access, dataclasses.replace(request, body=dict(request.body))
        )
    except GatewayError as exc:
        verdict.add("access", "deny", exc.reason.code)
        return
    if changed is not None:
        verdict.add("access", "transform", changed.code)
    rules = candidate.data
    if rules is None:
        return
    enforce = candidate.source.mode == "enforce"
    refusal = _media_refusal(request, rules)
    if refusal is not None:
        verdict.add(*_outcome(enforce, "deny", refusal.reason.code, "boundary.would_block"))
        return
    try:
        found = await find_all(rules.detector, [slot.text for slot in request.texts])
    # The candidate's detector failing says something about the candidate, never about
    # whether live traffic may pass.
    except Exception:  # noqa: BLE001
        if rules.source.on_detector_error == "block":
            verdict.add(*_outcome(enforce, "error", "boundary.detector_error", None))
        else:
            verdict.add("boundary", "allow", "boundary.detector_error")
        return
    counts: Counter[tuple[DataAction, str]] = Counter()
    for findings in found:
        for f in findings:
            counts[(rules.action(f.entity), f.entity)] += 1
    verdict.entities = by_action(counts)
    if any(action == "block" for action, _ in counts):
        verdict.add(*_outcome(enforce, "deny", "boundary.blocked_entity", "boundary.would_block"))
    elif any(action in ("mask", "redact", "tokenize") for action, _ in counts):
        verdict.add(*_outcome(enforce, "transform", "boundary.masked", "boundary.would_mask"))


def _outcome(
    enforce: bool, outcome: str, code: str, shadow_code: str | None
) -> tuple[str, str, str | None]:
    """A data decision as the candidate's own ``mode`` would give it."""
    if enforce:
        return "boundary", outcome, code
    return "boundary", "allow", shadow_code or code
