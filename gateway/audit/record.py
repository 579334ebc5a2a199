"""The audit record: built once from a request's context when the request finishes.

It names what was decided and why, who asked and what it cost; never a credential and
never a detected value. Text is kept only when the policy's ``retention.content`` is
``masked``, and then as it left for the model, after the data boundary.
"""

from __future__ import annotations

import operator
import secrets
import time
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from gateway.audit.names import shown_name
from gateway.auth.principal import Principal
from gateway.context import RequestContext
from gateway.errors import Reason
from gateway.steps import Step, decide

__all__ = ["NOT_TRAFFIC", "AuditRecord", "build_record", "event_record", "is_traffic"]


@dataclass(slots=True)
class AuditRecord:
    """One request, whatever its outcome. ``time`` is when it arrived (epoch seconds).

    Built once and never changed (``dataclasses.replace`` makes another). Not ``frozen``:
    a frozen class sets each of its 45 fields through ``object.__setattr__``, which made
    building the record of every request cost 5-7 µs instead of under one.
    """

    request_id: str
    time: float
    endpoint: str
    workflow: str | None
    policy_version: str | None
    mode: str | None
    subject: str | None
    roles: list[str]
    team: str | None
    key_id: str | None
    auth_method: str | None
    model_requested: str | None
    model_used: str | None
    fallback_used: bool
    decision: str  # allow | transform | masked | deny | error: decide(...).decision
    reasons: list[str]  # every reason code, in the order the steps gave them
    status: int  # the HTTP status the client got
    streamed: bool
    stream_end: str | None
    upstream_status: int | None
    attempts: int
    retries: int
    latency_ms: float
    upstream_ms: float | None
    tokens_in: int | None
    tokens_out: int | None
    reserved_usd: float | None
    actual_usd: float | None
    upstream_store: bool | None
    # {"request"|"answer": {action: {entity type: count}}}; rule ids, shadow, detector error
    entities: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    shadow: bool = False
    detector_error: bool = False
    content: dict[str, Any] | None = None
    fallback: str | None = None  # "model" or "message": what answered instead
    fallback_reason: str | None = None  # the reason code that set the fallback off
    review: bool = False  # flagged for manual review by the policy's fallback
    # A candidate policy's shadow verdict (gateway/rollout/verdict.py); records written before
    # the field existed read as None, so an existing trail needs no migration.
    candidate: dict[str, Any] | None = None
    # A review action's record (endpoint "review": claim, decide, deliver; the subject is the
    # reviewer), or the review a request opened; None on older records (gateway/review/).
    review_action: dict[str, Any] | None = None
    # An unknown route's path, its unconfigured segments replaced (gateway/audit/names.py).
    path: str | None = None
    # Added later the same way (old records read as None): the W3C trace id of the request,
    # and keyed fingerprints of its instructions and tool definitions as they left
    # ({"instructions"|"tools": hex}, gateway/observe/fingerprints.py), never the text.
    trace_id: str | None = None
    fingerprints: dict[str, str] | None = None
    # A promotion's or rollback's record (endpoint "policy"; the subject is who made it):
    # {"action", "from", "to", "reason_sha256"}; None on every other record
    # (gateway/tools/promote.py).
    policy_change: dict[str, Any] | None = None
    # A rollout event's record (endpoint "rollout": pause, resume, abort; the subject is the
    # operator, None for an automatic abort); None on every other record (gateway/rollout/).
    rollout: dict[str, Any] | None = None
    # A console sign-in's or sign-out's record (endpoint "console"; the subject is who signed
    # in, None when the credential was refused): {"action", "outcome", ...}, never the
    # credential; None on every other record (gateway/console/session.py).
    console: dict[str, Any] | None = None

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys): the bytes the hash chain covers."""
        # Not dataclasses.asdict: it deep-copies every nested value (4x the time). The fields
        # are read in sorted order in one call: orjson's sort then finds them in order.
        values = dict(zip(_SORTED, _SORTED_VALUES(self), strict=True))
        return orjson.dumps(values, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, raw: bytes | str) -> AuditRecord:
        return cls(**orjson.loads(raw))

    @property
    def entity_types(self) -> list[str]:
        """Every entity type seen in the request or the answer, sorted."""
        return sorted({e for side in self.entities.values() for c in side.values() for e in c})


_SORTED = tuple(sorted(f.name for f in fields(AuditRecord)))
_SORTED_VALUES = operator.attrgetter(*_SORTED)


def build_record(ctx: RequestContext, status: int) -> AuditRecord:
    """The record of ``ctx`` as it stands now, answered with ``status``."""
    now = time.perf_counter()
    principal, policy, request = ctx.principal, ctx.policy, ctx.request
    model_requested = request.model if request is not None else None
    boundary = ctx.boundary
    return AuditRecord(
        request_id=ctx.request_id,
        time=round(time.time() - (now - ctx.started), 6),
        endpoint=ctx.endpoint,
        workflow=shown_name(ctx.workflow, ctx.workflow_known),
        policy_version=policy.version if policy else None,
        mode=policy.source.mode if policy else None,
        subject=principal.subject if principal else None,
        roles=sorted(principal.roles) if principal else [],
        team=principal.team if principal else None,
        key_id=principal.key_id if principal else None,
        auth_method=principal.method if principal else None,
        model_requested=shown_name(model_requested, ctx.model_known),
        model_used=ctx.model_used,
        fallback_used=ctx.fallback is not None
        or (ctx.model_used is not None and ctx.model_used != model_requested),
        decision=decide(ctx.decisions).decision,
        reasons=[d.code for d in ctx.decisions if d.code is not None],
        status=status,
        streamed=ctx.streamed,
        stream_end=ctx.stream_end,
        upstream_status=ctx.upstream_status,
        attempts=ctx.attempts,
        retries=max(0, ctx.attempts - 1),
        latency_ms=round((now - ctx.started) * 1000, 3),
        upstream_ms=round(ctx.upstream_s * 1000, 3) if ctx.upstream_s is not None else None,
        tokens_in=ctx.tokens_in,
        tokens_out=ctx.tokens_out,
        reserved_usd=ctx.reserved_usd,
        actual_usd=ctx.actual_usd,
        upstream_store=policy.source.retention.upstream_store if policy else None,
        entities={"request": boundary.request, "answer": boundary.answer} if boundary else {},
        rules=sorted(boundary.rules) if boundary else [],
        shadow=boundary.shadow if boundary else False,
        detector_error=boundary.detector_error if boundary else False,
        content=_content(ctx),
        fallback=ctx.fallback,
        fallback_reason=ctx.fallback_reason,
        review=ctx.review,
        candidate=_candidate(ctx),
        review_action={"action": "opened", "review_id": ctx.review_id} if ctx.review_id else None,
        path=ctx.path,
        trace_id=ctx.trace_id,
        fingerprints=ctx.fingerprints,
    )


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


def _candidate(ctx: RequestContext) -> dict[str, Any] | None:
    return ctx.candidate.recorded(ctx) if ctx.candidate is not None else None


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
