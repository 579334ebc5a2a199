"""The audit record: built once from a request's context when the request finishes.

It names what was decided and why, who asked and what it cost; never a credential and
never a detected value. Text is kept only when the policy's ``retention.content`` is
``masked``, and then as it left for the model, after the data boundary.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.audit.names import shown_name
from gateway.auth.principal import Principal
from gateway.context import RequestContext
from gateway.errors import Reason
from gateway.steps import Step, decide

__all__ = ["NOT_TRAFFIC", "AuditRecord", "build_record", "event_record", "is_traffic"]


@dataclass(slots=True, kw_only=True)
class AuditRecord:
    """One request, whatever its outcome. ``time`` is when it arrived (epoch seconds).

    Built once and never changed (``dataclasses.replace`` makes another). Not ``frozen``:
    a frozen class sets each of its 45 fields through ``object.__setattr__``, which made
    building the record of every request cost 5-7 µs instead of under one.
    """

    # The fields in sorted order, so that orjson writes the record's canonical JSON (sorted
    # keys) straight from its slots; keyword-only, so defaults need not come last.
    actual_usd: float | None
    attempts: int
    auth_method: str | None
    # A candidate policy's shadow verdict (gateway/rollout/verdict.py); records written before
    # the field existed read as None, so an existing trail needs no migration.
    candidate: dict[str, Any] | None = None
    # A console sign-in's or sign-out's record (endpoint "console"; the subject is who signed
    # in, None when the credential was refused): {"action", "outcome", ...}, never the
    # credential; None on every other record (gateway/console/session.py).
    console: dict[str, Any] | None = None
    content: dict[str, Any] | None = None
    decision: str  # allow | transform | masked | deny | error: decide(...).decision
    detector_error: bool = False  # the data boundary's detector failed (and was let pass)
    endpoint: str
    # {"request"|"answer": {action: {entity type: count}}}
    entities: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    fallback: str | None = None  # "model" or "message": what answered instead
    fallback_reason: str | None = None  # the reason code that set the fallback off
    fallback_used: bool
    # Added later (old records read as None): keyed fingerprints of the request's
    # instructions and tool definitions as they left ({"instructions"|"tools": hex},
    # gateway/observe/fingerprints.py), never the text; ``trace_id`` likewise.
    fingerprints: dict[str, str] | None = None
    key_id: str | None
    latency_ms: float
    mode: str | None
    model_requested: str | None
    model_used: str | None
    # An unknown route's path, its unconfigured segments replaced (gateway/audit/names.py).
    path: str | None = None
    # A promotion's or rollback's record (endpoint "policy"; the subject is who made it):
    # {"action", "from", "to", "reason_sha256"}; None on every other record
    # (gateway/tools/promote.py).
    policy_change: dict[str, Any] | None = None
    policy_version: str | None
    reasons: list[str]  # every reason code, in the order the steps gave them
    request_id: str
    reserved_usd: float | None
    retries: int
    review: bool = False  # flagged for manual review by the policy's fallback
    # A review action's record (endpoint "review": claim, decide, deliver; the subject is the
    # reviewer), or the review a request opened; None on older records (gateway/review/).
    review_action: dict[str, Any] | None = None
    roles: list[str]
    # A rollout event's record (endpoint "rollout": pause, resume, abort; the subject is the
    # operator, None for an automatic abort); None on every other record (gateway/rollout/).
    rollout: dict[str, Any] | None = None
    rules: list[str] = field(default_factory=list)  # the boundary's rule ids
    shadow: bool = False  # the boundary ran in shadow mode
    status: int  # the HTTP status the client got
    stream_end: str | None
    streamed: bool
    subject: str | None
    team: str | None
    time: float
    tokens_in: int | None
    tokens_out: int | None
    trace_id: str | None = None  # the W3C trace id of the request
    upstream_ms: float | None
    upstream_status: int | None
    upstream_store: bool | None
    workflow: str | None

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys): the bytes the hash chain covers."""
        # orjson writes a dataclass's fields in their order, which is sorted; the option sorts
        # the keys of the dicts inside. A third less than a sorted dict of the fields.
        return orjson.dumps(self, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, raw: bytes | str) -> AuditRecord:
        return cls(**orjson.loads(raw))

    @property
    def entity_types(self) -> list[str]:
        """Every entity type seen in the request or the answer, sorted."""
        return sorted({e for side in self.entities.values() for c in side.values() for e in c})


def build_record(ctx: RequestContext, status: int) -> AuditRecord:
    """The record of ``ctx`` as it stands now, answered with ``status``."""
    now = time.perf_counter()
    principal, policy, request, boundary = ctx.principal, ctx.policy, ctx.request, ctx.boundary
    model_requested = request.model if request is not None else None
    elapsed = now - ctx.started
    # Whole microseconds by integer rounding: ``round(x, 6)`` converts to decimal and back
    # (0.75 µs for an epoch time, against 0.17).
    # What most requests have is set in one call; what some lack after it, each part once
    # (a test per field of the principal, policy and boundary was a fifth of the cost).
    record = AuditRecord(
        request_id=ctx.request_id,
        time=round((time.time() - elapsed) * 1e6) / 1e6,
        endpoint=ctx.endpoint,
        workflow=shown_name(ctx.workflow, ctx.workflow_known),
        policy_version=None,
        mode=None,
        subject=None,
        roles=[],
        team=None,
        key_id=None,
        auth_method=None,
        model_requested=shown_name(model_requested, ctx.model_known),
        model_used=ctx.model_used,
        fallback_used=ctx.fallback is not None
        or (ctx.model_used is not None and ctx.model_used != model_requested),
        decision="allow",
        reasons=[],
        status=status,
        streamed=ctx.streamed,
        stream_end=ctx.stream_end,
        upstream_status=ctx.upstream_status,
        attempts=ctx.attempts,
        retries=max(0, ctx.attempts - 1),
        latency_ms=round(elapsed * 1e6) / 1e3,
        upstream_ms=round(ctx.upstream_s * 1e6) / 1e3 if ctx.upstream_s is not None else None,
        tokens_in=ctx.tokens_in,
        tokens_out=ctx.tokens_out,
        reserved_usd=ctx.reserved_usd,
        actual_usd=ctx.actual_usd,
        upstream_store=None,
        fallback=ctx.fallback,
        fallback_reason=ctx.fallback_reason,
        review=ctx.review,
        path=ctx.path,
        trace_id=ctx.trace_id,
        fingerprints=ctx.fingerprints,
    )
    if policy is not None:
        record.policy_version, record.mode = policy.version, policy.source.mode
        record.upstream_store = policy.source.retention.upstream_store
        record.content = _content(ctx)
    if principal is not None:
        record.subject, record.roles, record.team = (
            principal.subject,
            sorted(principal.roles),
            principal.team,
        )
        record.key_id, record.auth_method = principal.key_id, principal.method
    if ctx.decisions:
        record.decision = decide(ctx.decisions).decision
        record.reasons = [d.code for d in ctx.decisions if d.code is not None]
    if boundary is not None:
        record.entities = {"request": boundary.request, "answer": boundary.answer}
        record.rules, record.shadow = sorted(boundary.rules), boundary.shadow
        record.detector_error = boundary.detector_error
    if ctx.candidate is not None:
        record.candidate = ctx.candidate.recorded(ctx)
    if ctx.review_id:
        record.review_action = {"action": "opened", "review_id": ctx.review_id}
    return record


# Records that are not model traffic: the kinds event_record makes (review actions, policy
# promotions, rollout pauses and aborts, console sign-ins; some name a workflow), the app's
# polls of its reviews and admin routes. Whatever counts requests, rates and latency (the
# console's rollups, ``gateway report``) leaves them out.
NOT_TRAFFIC = frozenset({"review", "reviews", "admin", "policy", "rollout", "console"})


def is_traffic(record: AuditRecord) -> bool:
    """A request to a model route (answered, refused or failed), not an event."""
    return record.endpoint not in NOT_TRAFFIC


def event_record(
    kind: str,
    label: str,
    workflow: str | None,
    version: str | None,
    actor: Principal | None,
    reason: Reason,
    **field: Any,
) -> AuditRecord:
    """A record of something done to a workflow rather than a request to it (a review action,
    a rollout event): ``kind`` is its endpoint and decision, ``label`` goes into its id,
    ``actor`` who did it (None: the gateway itself), ``field`` the kind's own record field
    (``review_action=...``, ``rollout=...``)."""
    return AuditRecord(
        request_id=f"{kind}-{label}-{secrets.token_hex(6)}",
        time=round(time.time(), 6),
        endpoint=kind,
        workflow=workflow,
        policy_version=version,
        mode=None,
        subject=actor.subject if actor else None,
        roles=sorted(actor.roles) if actor else [],
        team=actor.team if actor else None,
        key_id=actor.key_id if actor else None,
        auth_method=actor.method if actor else None,
        model_requested=None,
        model_used=None,
        fallback_used=False,
        decision=kind,
        reasons=[reason.code],
        status=reason.status,
        streamed=False,
        stream_end=None,
        upstream_status=None,
        attempts=0,
        retries=0,
        latency_ms=0.0,
        upstream_ms=None,
        tokens_in=None,
        tokens_out=None,
        reserved_usd=None,
        actual_usd=None,
        upstream_store=None,
        **field,
    )


_REQUEST_CHECKS = frozenset({Step.ACCESS, Step.BOUNDARY})


def _content(ctx: RequestContext) -> dict[str, Any] | None:
    """The request's text as it left for the model, under ``retention.content: masked``.

    Only when the boundary enforced the policy on it and it was sent: then the text slots hold
    the rewritten text. A refused request (its slots are still raw), shadow mode (sent raw) or
    a detector error let through (not inspected) keeps no text. The answer is not kept: the
    caller's copy has its tokens restored to the values.
    """
    policy, request, boundary = ctx.policy, ctx.request, ctx.boundary
    if policy is None or request is None or policy.source.retention.content != "masked":
        return None
    if boundary is None or boundary.shadow or boundary.detector_error or not ctx.attempts:
        return None
    if any(d.outcome == "deny" and d.step in _REQUEST_CHECKS for d in ctx.decisions):
        return None
    return {"request": [{"role": slot.role, "text": slot.text} for slot in request.texts]}
