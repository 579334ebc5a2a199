"""Re-deciding recorded traffic under candidate policies, from what the audit trail keeps.

A record keeps the caller (subject, roles, team), the endpoint, the model asked for, whether
it streamed, the entity types and counts per action the live policy found in the request and
the answer, tokens, cost and, under ``retention.content: masked``, the text as it left. From
that a candidate's access rules and data actions can be re-decided; what the record does not
hold is reported as undecidable rather than guessed:

- an entity the live policy did not look for (or looked for differently: another threshold,
  pattern, deny-term or allow list), unless the request's text was retained;
- the request of a caller the live policy refused (its body was never read);
- tools and the request's own max tokens (not recorded): noted per workflow when the
  candidate's ``allow_tools`` or ``max_output_tokens`` differ from the live policy's.

Answers are re-decided from their recorded counts only: their text is never retained.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from gateway import errors
from gateway.access import check_caller
from gateway.audit.record import AuditRecord
from gateway.auth.principal import Principal
from gateway.boundary.detector import DENY_TERM
from gateway.errors import GatewayError
from gateway.policy.compile import CompiledPolicy
from gateway.policy.registry import PolicySet
from gateway.rollout.assign import assign
from gateway.steps import Decision, Step, decide

__all__ = ["Change", "Replayed", "WorkflowReport", "replay"]

Change = Literal["newly_blocked", "newly_allowed", "action_change", "same", "undecidable"]

# Refusals a policy makes on a request or answer (not the upstream's, auth's or the audit's).
_CALLER_REFUSALS = frozenset(
    r.code
    for r in (
        errors.ACCESS_ROLE_DENIED, errors.ACCESS_SUBJECT_DENIED, errors.ACCESS_TEAM_DENIED,
        errors.ACCESS_ENDPOINT_DENIED,
    )
)  # fmt: skip
_REQUEST_REFUSALS = frozenset(
    r.code
    for r in (
        errors.ACCESS_MODEL_DENIED, errors.ACCESS_TOOL_DENIED, errors.ACCESS_STREAMING_DENIED,
        errors.ACCESS_TOKENS_EXCEEDED,
    )
)  # fmt: skip
_MEDIA_REFUSALS = frozenset({errors.BOUNDARY_IMAGE.code, errors.BOUNDARY_UNREADABLE.code})
_DATA_REFUSALS = frozenset({errors.BOUNDARY_BLOCKED.code, errors.BOUNDARY_BLOCKED_OUTPUT.code})
_EVENTS = frozenset({"admin", "review", "policy", "rollout"})
_POLICY_REFUSALS = _CALLER_REFUSALS | _REQUEST_REFUSALS | _MEDIA_REFUSALS | _DATA_REFUSALS


@dataclass(frozen=True, slots=True)
class Replayed:
    """One record under its workflow's candidate."""

    request_id: str
    time: float
    subject: str | None
    change: Change
    live: str  # allow | masked | deny (the policy's verdict; upstream failures are not)
    candidate: str
    reasons: list[str]  # the candidate's reason codes
    detail: str  # what changed, or why it cannot be decided
    # Whether the caller falls in the candidate's canary share (``rollout.percent``), as the
    # one assignment (gateway/rollout/assign.py) decides it; None: its key is not recorded.
    canary: bool | None = False


@dataclass(slots=True)
class WorkflowReport:
    workflow: str
    candidate_version: str
    records: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    changed: list[Replayed] = field(default_factory=list)  # everything but "same"
    notes: list[str] = field(default_factory=list)  # what cannot be checked for any record

    def as_json(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "candidate_version": self.candidate_version,
            "records": self.records,
            "counts": {c: self.counts[c] for c in _ORDER},
            "in_canary": sum(r.canary is True for r in self.changed),
            "notes": self.notes,
            "changes": [
                {
                    "request_id": r.request_id, "time": r.time, "subject": r.subject,
                    "change": r.change, "live": r.live, "candidate": r.candidate,
                    "reasons": r.reasons, "detail": r.detail, "canary": r.canary,
                }
                for r in self.changed
            ],
        }  # fmt: skip


_ORDER: tuple[Change, ...] = (
    "newly_blocked", "newly_allowed", "action_change", "undecidable", "same",
)  # fmt: skip


def replay(
    records: Iterable[AuditRecord],
    candidates: Mapping[str, CompiledPolicy],
    live: Mapping[str, CompiledPolicy],
) -> dict[str, WorkflowReport]:
    """A report per workflow that has a candidate; ``live`` are the policies now in the
    policies folder (a record made under one of their versions knows what that policy
    looked for)."""
    reports: dict[str, WorkflowReport] = {}
    assigning = PolicySet.of(live, candidates)
    for record in records:
        candidate = candidates.get(record.workflow or "")
        if candidate is None or record.policy_version is None or record.endpoint in _EVENTS:
            continue  # no candidate, no policy decided it (auth failed, unknown workflow), or
            # not a request: an admin call, a review action, a promotion, a pause or abort
        report = reports.get(candidate.name)
        if report is None:
            report = reports[candidate.name] = WorkflowReport(candidate.name, candidate.version)
            report.notes = _notes(candidate, live.get(candidate.name))
        known = live.get(candidate.name)
        if known is not None and known.version != record.policy_version:
            known = None
        result = _replay_one(record, candidate, known)
        report.records += 1
        report.counts[result.change] += 1
        if result.change != "same":
            report.changed.append(replace(result, canary=_in_canary(record, assigning)))
    return reports


def _in_canary(record: AuditRecord, policies: PolicySet) -> bool | None:
    """Whether the recorded caller would be enforced under the candidate now."""
    name = record.workflow or ""
    live, candidate = policies.policies.get(name), policies.candidates.get(name)
    rollout = candidate.source.rollout if candidate is not None else None
    if live is None or rollout is None or rollout.percent <= 0:
        return False
    if rollout.key.startswith("header:"):
        return None  # request headers are not recorded
    caller = Principal(record.subject or "", frozenset(record.roles), record.team, record.key_id)
    return assign(policies, live, caller, {}).arm == "candidate"


def _live_verdict(record: AuditRecord) -> tuple[str, list[str]]:
    """The live policy's own verdict, from the record's reason codes: its refusals, or
    whether its data boundary masked the request."""
    live = _Verdict([_refusal(r) for r in record.reasons if r in _POLICY_REFUSALS])
    if not live.decisions and errors.BOUNDARY_MASKED.code in record.reasons:
        return "masked", []
    return live.decision, live.reasons


def _refusal(code: str) -> Decision:
    step = Step.BOUNDARY if code in _MEDIA_REFUSALS | _DATA_REFUSALS else Step.ACCESS
    return Decision(step, "deny", code)


def _denied(reason: errors.Reason, actions: _Actions = ({}, {})) -> _Verdict:
    step = Step.ACCESS if reason.code.startswith("access.") else Step.BOUNDARY
    return _Verdict([Decision(step, "deny", reason.code)], actions)


_Actions = tuple[dict[str, str], dict[str, str]]  # request, answer: entity -> action


@dataclass(frozen=True, slots=True)
class _Verdict:
    """A policy's decisions on a record; ``decide`` says what they come to."""

    decisions: list[Decision]
    actions: _Actions = ({}, {})

    @property
    def decision(self) -> str:  # allow | masked | deny
        return decide(self.decisions).decision

    @property
    def reasons(self) -> list[str]:  # the refusals: a masked request has none
        return [d.code for d in self.decisions if d.code is not None and d.outcome == "deny"]


def _replay_one(
    record: AuditRecord, candidate: CompiledPolicy, live: CompiledPolicy | None
) -> Replayed:
    live_decision, live_reasons = _live_verdict(record)
    acted = (_recorded_actions(record, "request"), _recorded_actions(record, "answer"))
    decided = _decide(record, candidate, live, live_reasons)
    if isinstance(decided, str):
        return Replayed(
            record.request_id, record.time, record.subject, "undecidable", live_decision, "?",
            [], decided,
        )  # fmt: skip
    detail = _describe(decided)
    decision, reasons = decided.decision, decided.reasons
    change: Change
    if live_decision != "deny" and decision == "deny":
        change = "newly_blocked"
    elif live_decision == "deny" and decision != "deny":
        change, detail = "newly_allowed", f"live: {', '.join(live_reasons)}"
    elif (live_decision, live_reasons, acted) != (decision, reasons, decided.actions):
        change = "action_change"
    else:
        change, detail = "same", ""
    return Replayed(
        record.request_id, record.time, record.subject, change, live_decision, decision,
        reasons, detail,
    )  # fmt: skip


def _decide(
    record: AuditRecord,
    candidate: CompiledPolicy,
    live: CompiledPolicy | None,
    live_reasons: list[str],
) -> _Verdict | str:
    """The candidate's verdict, or why it cannot be made from the record."""
    principal = Principal(record.subject or "", frozenset(record.roles), record.team)
    try:
        check_caller(candidate.access, principal, record.endpoint)
    except GatewayError as exc:
        return _denied(exc.reason)
    if record.endpoint == "models":
        return _Verdict([])
    if any(r in _CALLER_REFUSALS for r in live_reasons) or record.model_requested is None:
        return "the live policy refused the caller: the request was never read"
    access = candidate.access
    if record.model_requested not in access.model_set:
        return _denied(errors.ACCESS_MODEL_DENIED)
    if record.streamed and not access.allow_streaming:
        return _denied(errors.ACCESS_STREAMING_DENIED)
    if any(r in _MEDIA_REFUSALS for r in live_reasons):
        return "the live policy refused media the trail does not keep"
    if record.detector_error and candidate.data is not None:
        return "detection failed on the live request: its entity counts are unknown"
    request, unknown = _request_counts(record, candidate, live)
    actions = _actions(candidate, request)
    if "block" in actions.values():
        return _denied(errors.BOUNDARY_BLOCKED, (actions, {}))
    if unknown:
        return (
            f"{', '.join(sorted(unknown))}: not looked for by the live policy version "
            f"{record.policy_version} (or the request never reached it) and no request text "
            "retained"
        )
    answer = _actions(candidate, _answer_counts(record, candidate))
    if "block" in answer.values():
        return _denied(errors.BOUNDARY_BLOCKED_OUTPUT, (actions, answer))
    masked = [Decision(Step.BOUNDARY, "transform", errors.BOUNDARY_MASKED.code)] if actions else []
    return _Verdict(masked, (actions, answer))


def _recorded_actions(record: AuditRecord, side: str) -> dict[str, str]:
    """Entity -> what the live policy did (or, in shadow, would have done) with it."""
    return {e: a for a, per in record.entities.get(side, {}).items() for e in per if a != "allow"}


def _describe(verdict: _Verdict) -> str:
    request, answer = verdict.actions
    parts = list(verdict.reasons)
    parts += [f"{e}: {a}" for e, a in sorted(request.items())]
    parts += [f"answer {e}: {a}" for e, a in sorted(answer.items())]
    return "; ".join(parts)


def _actions(candidate: CompiledPolicy, counts: Mapping[str, int]) -> dict[str, str]:
    """Entity -> the candidate's action, for the entities it acts on that were present."""
    if candidate.data is None:
        return {}
    out: dict[str, str] = {}
    for entity, n in counts.items():
        action = candidate.data.actions.get(entity, "allow")
        if n and action != "allow":
            out[entity] = action
    return out


def _flat(side: Mapping[str, Mapping[str, int]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for per_entity in side.values():
        counts.update(per_entity)
    return counts


def _request_counts(
    record: AuditRecord, candidate: CompiledPolicy, live: CompiledPolicy | None
) -> tuple[Counter[str], set[str]]:
    """Counts of the entities the candidate acts on, and those it cannot know."""
    counts = _flat(record.entities.get("request", {}))
    rules = candidate.data
    if rules is None:
        return counts, set()
    wanted = {e for e, a in rules.actions.items() if a != "allow"}
    if DENY_TERM in wanted and not rules.source.deny_terms:
        wanted.discard(DENY_TERM)
    # A request the live policy refused at access never reached its boundary: no count holds.
    inspected = not any(r.startswith("access.") and r in _POLICY_REFUSALS for r in record.reasons)
    missing = {
        e
        for e in wanted
        if counts[e] == 0 and not (inspected and _same_detection(e, candidate, live))
    }
    texts = _retained(record)
    if missing and texts is not None:
        for text in texts:  # masked text: what live acted on is a placeholder by now
            for finding in rules.detector.find(text):
                if finding.entity in missing:
                    counts[finding.entity] += 1
        missing = set()
    return counts, missing


def _answer_counts(record: AuditRecord, candidate: CompiledPolicy) -> Counter[str]:
    if candidate.data is None or not candidate.data.source.scan_output:
        return Counter()
    return _flat(record.entities.get("answer", {}))


def _retained(record: AuditRecord) -> list[str] | None:
    if not record.content or "request" not in record.content:
        return None
    return [str(slot.get("text", "")) for slot in record.content["request"]]


def _same_detection(entity: str, candidate: CompiledPolicy, live: CompiledPolicy | None) -> bool:
    """Whether the live policy looked for ``entity`` exactly as the candidate does, so a zero
    count in the record means the entity was not there."""
    if live is None or live.data is None or candidate.data is None:
        return False
    if live.data.actions.get(entity, "allow") == "allow":
        return False
    a, b = live.data.source, candidate.data.source
    if a.allow_list != b.allow_list:
        return False
    if entity == DENY_TERM:
        return a.deny_terms == b.deny_terms
    custom_a = [c for c in a.custom if c.name == entity]
    custom_b = [c for c in b.custom if c.name == entity]
    if custom_a or custom_b:
        strip = [(c.pattern, c.context, c.score) for c in custom_a]
        return strip == [(c.pattern, c.context, c.score) for c in custom_b]
    return a.min_scores.get(entity, a.min_score) == b.min_scores.get(entity, b.min_score)


def _notes(candidate: CompiledPolicy, live: CompiledPolicy | None) -> list[str]:
    notes = []
    if live is None:
        return ["no live policy of this name now: zero entity counts cannot be trusted"]
    c, lv = candidate.access, live.access
    if not c.allow_tools and lv.allow_tools:
        notes.append("allow_tools: false is not re-decided: the trail does not record tool use")
    if c.max_output_tokens != lv.max_output_tokens or c.clamp != lv.clamp:
        notes.append(
            "max_output_tokens / on_exceed are not re-decided: the trail does not record the "
            "max tokens a request asked for"
        )
    if (candidate.data and candidate.data.source.images) != (live.data and live.data.source.images):
        notes.append("images is not re-decided: the trail does not record image parts")
    return notes
