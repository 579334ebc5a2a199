"""``gateway policy explain``: each step's decision for one message, and the rule behind it.

The steps are the pipeline's own functions (``check_caller``, ``check_request``, the
boundary's ``inspect``) run in its order on a request built as a client would send it, so the
verdict is the one the gateway would reach. Nothing is sent: the forward step only says where
the request would go; the vault is in memory and no audit record is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

from gateway.access import check_caller, check_request
from gateway.auth.principal import Principal
from gateway.boundary.answer import inspect_answer
from gateway.boundary.scan import find_all
from gateway.boundary.service import build_boundary
from gateway.boundary.step import Boundary, Inspection
from gateway.config import GatewayConfig
from gateway.context import Outcome, RequestContext
from gateway.errors import POLICY_UNKNOWN_WORKFLOW, REQUEST_WRONG_API, GatewayError
from gateway.normalized import Api, NormalizedRequest
from gateway.policy.compile import AccessRules, CompiledPolicy
from gateway.steps import Decision, Step, decide
from gateway.surfaces import ANTHROPIC, OPENAI, anthropic_messages, openai_chat
from gateway.tools.cases import CaseRequest
from gateway.tools.offline import offline_config, offline_environ, request_body

__all__ = ["EntityFinding", "Explanation", "StepVerdict", "explain"]


@dataclass(frozen=True, slots=True)
class StepVerdict:
    """One step: its pipeline name, its outcome, its reason code and the rule that decided."""

    step: Step
    outcome: Outcome
    code: str | None
    rule: str


@dataclass(frozen=True, slots=True)
class EntityFinding:
    """A value the boundary found: where (text index and span), what, by which rule, and the
    action the policy takes on it."""

    text: int
    start: int
    end: int
    entity: str
    rule: str
    score: float
    action: str
    value: str


@dataclass(slots=True)
class Explanation:
    workflow: str
    subject: str
    roles: list[str]
    team: str | None
    steps: list[StepVerdict] = field(default_factory=list)
    findings: list[EntityFinding] = field(default_factory=list)
    policy_file: str | None = None
    policy_version: str | None = None
    mode: str | None = None
    # The request's texts as they would leave; None when a step refused before they would.
    sent: list[str] | None = None
    answer: str | None = None  # the given answer as the caller would get it

    def add(self, step: Step, outcome: Outcome, code: str | None, rule: str) -> None:
        self.steps.append(StepVerdict(step, outcome, code, rule))

    @property
    def decision(self) -> str:
        return decide(Decision(s.step, s.outcome, s.code) for s in self.steps).outcome

    @property
    def reasons(self) -> list[str]:
        return list(dict.fromkeys(s.code for s in self.steps if s.code is not None))

    def as_dict(self) -> dict[str, object]:
        return {
            **{k: v for k, v in asdict(self).items() if k not in ("steps", "findings")},
            "decision": self.decision,
            "reasons": self.reasons,
            "steps": [asdict(s) for s in self.steps],
            "findings": [asdict(f) for f in self.findings],
        }


async def explain(
    config: GatewayConfig,
    policies: Mapping[str, CompiledPolicy],
    model_apis: Mapping[str, frozenset[Api]],
    workflow: str,
    principal: Principal,
    request: CaseRequest,
    answer: str | None = None,
) -> Explanation:
    """Run the decision steps for ``request`` by ``principal``, stopping at the first
    refusal; with ``answer``, also what the caller would get if the model replied that."""
    out = Explanation(workflow, principal.subject, sorted(principal.roles), principal.team)
    policy = policies.get(workflow)
    if policy is None:
        loaded = ", ".join(sorted(policies)) or "none"
        out.steps.append(
            StepVerdict(
                Step.RESOLVE_POLICY,
                "deny",
                POLICY_UNKNOWN_WORKFLOW.code,
                f"no policy defines workflow '{workflow}' (loaded: {loaded})",
            )
        )
        return out
    out.policy_file, out.policy_version = policy.path, policy.version
    out.mode = policy.source.mode
    out.steps.append(
        StepVerdict(Step.RESOLVE_POLICY, "allow", None, f"{policy.path} ({policy.version})")
    )
    surface = OPENAI if request.api == "openai" else ANTHROPIC
    rules = policy.access
    try:
        check_caller(rules, principal, surface.endpoint)
    except GatewayError as exc:
        out.add(
            Step.ACCESS, "deny", exc.reason.code, _caller_rule(rules, principal, surface.endpoint)
        )
        return out
    out.add(Step.ACCESS, "allow", None, _caller_rule(rules, principal, surface.endpoint))
    try:
        parsed = surface.parse(request_body(request, policy))
        out.add(Step.READ_REQUEST, "allow", None, f"{surface.api} request, model {parsed.model}")
        changed = check_request(rules, parsed)
    except GatewayError as exc:
        step = Step.ACCESS if exc.reason.code.startswith("access.") else Step.READ_REQUEST
        out.add(step, "deny", exc.reason.code, _request_rule(rules, request, exc.message))
        return out
    out.steps.append(
        StepVerdict(
            Step.ACCESS,
            "transform" if changed else "allow",
            changed.code if changed else None,
            _request_rule(rules, request, None),
        )
    )
    out.add(Step.LIMITS, "allow", None, _limits_rule(policy))
    boundary = build_boundary(offline_config(config), offline_environ(config))
    ctx = RequestContext(surface.endpoint, policy.name)
    ctx.principal, ctx.policy = principal, policy
    try:
        inspection = await _boundary(boundary, ctx, policy, parsed, out)
        if inspection is False:
            return out
        out.sent = [slot.text for slot in parsed.texts]
        out.steps.append(_forward(config, policy, model_apis, parsed))
        if answer is not None and out.steps[-1].outcome == "allow":
            await _answer(inspection, ctx, parsed, answer, out)
    finally:
        await boundary.aclose()
    return out


async def _boundary(
    boundary: Boundary,
    ctx: RequestContext,
    policy: CompiledPolicy,
    request: NormalizedRequest,
    out: Explanation,
) -> Inspection | Literal[False] | None:
    """The boundary step's verdict and findings; False when it refuses the request, else what
    inspects the answer (None: answers pass as they come)."""
    data = policy.data
    if data is None:
        out.add(Step.BOUNDARY, "allow", None, "no data section: nothing is inspected")
        return None
    texts = [slot.text for slot in request.texts]
    for i, (text, found) in enumerate(
        zip(texts, await find_all(data.detector, texts), strict=True)
    ):
        out.findings += [
            EntityFinding(
                i,
                f.start,
                f.end,
                f.entity,
                f.rule,
                round(f.score, 2),
                data.action(f.entity),
                text[f.start : f.end],
            )
            for f in found
        ]
    summary = _summary(out.findings)
    try:
        inspection = await boundary.inspect(ctx, request, policy)
    except GatewayError as exc:
        out.add(Step.BOUNDARY, "deny", exc.reason.code, f"{summary}: {exc.message}")
        return False
    verdicts = [d for d in ctx.decisions if d.step == Step.BOUNDARY]
    outcome: Outcome = verdicts[-1].outcome if verdicts else "allow"
    code = verdicts[-1].code if verdicts else None
    shadow = " (shadow mode: traffic passes unchanged)" if data.shadow else ""
    out.add(Step.BOUNDARY, outcome, code, summary + shadow)
    return inspection


async def _answer(
    inspection: Inspection | None,
    ctx: RequestContext,
    request: NormalizedRequest,
    answer: str,
    out: Explanation,
) -> None:
    """The inspect_answer step on ``answer`` as the model's whole reply."""
    wire = openai_chat if request.api == "openai_chat" else anthropic_messages
    body = wire.answer_body("explain", request.model, answer, 1, 1)
    if inspection is None:
        out.add(Step.INSPECT_ANSWER, "allow", None, "answers are not inspected")
        out.answer = answer
        return
    try:
        body = await inspect_answer(inspection, request.api, body)
    except GatewayError as exc:
        out.add(Step.INSPECT_ANSWER, "deny", exc.reason.code, exc.message)
        return
    verdicts = [d for d in ctx.decisions if d.step == Step.INSPECT_ANSWER]
    counts = inspection.record.answer
    found = ", ".join(
        f"{entity} x{n} {action}"
        for action, entities in sorted(counts.items())
        for entity, n in sorted(entities.items())
    )
    rule = f"answer: {found}" if found else "answer: nothing found"
    if verdicts:
        out.add(Step.INSPECT_ANSWER, verdicts[-1].outcome, verdicts[-1].code, rule)
    else:
        out.add(Step.INSPECT_ANSWER, "allow", None, rule)
    out.answer = _answer_text(orjson.loads(body))


def _answer_text(data: dict[str, Any]) -> str:
    if "choices" in data:
        return str(data["choices"][0]["message"].get("content") or "")
    return "".join(b.get("text", "") for b in data.get("content", []) if isinstance(b, dict))


def _limits_rule(policy: CompiledPolicy) -> str:
    limits = policy.source.limits
    if limits is None or not (limits.rate or limits.budget):
        return "no limits section"
    parts = []
    for r in limits.rate:
        caps = [
            f"{n} {unit}"
            for n, unit in (
                (r.requests_per_minute, "requests/min"),
                (r.requests_per_hour, "requests/h"),
                (r.tokens_per_minute, "tokens/min"),
                (r.tokens_per_day, "tokens/day"),
            )
            if n is not None
        ]
        parts.append(f"rate per {r.per}: {', '.join(caps)}")
    for b in limits.budget:
        caps = [
            f"${usd:g}/{unit}"
            for usd, unit in ((b.usd_per_day, "day"), (b.usd_per_month, "month"))
            if usd is not None
        ]
        parts.append(f"budget per {b.per}: {', '.join(caps)}")
    return "; ".join(parts) + " (counters are not consulted: explain keeps none)"


def _summary(findings: list[EntityFinding]) -> str:
    if not findings:
        return "data: nothing found"
    counts: dict[tuple[str, str], int] = {}
    for f in findings:
        counts[(f.entity, f.action)] = counts.get((f.entity, f.action), 0) + 1
    return "data.entities: " + ", ".join(
        f"{entity} x{n} {action}" for (entity, action), n in sorted(counts.items())
    )


def _forward(
    config: GatewayConfig,
    policy: CompiledPolicy,
    model_apis: Mapping[str, frozenset[Api]],
    request: NormalizedRequest,
) -> StepVerdict:
    chain = [m for m in policy.model_chain(request.model) if request.api in model_apis.get(m, ())]
    if request.model not in chain:
        return StepVerdict(
            Step.FORWARD,
            "deny",
            REQUEST_WRONG_API.code,
            f"model '{request.model}' is not served through {request.api}",
        )
    route = [f"{m} (provider {config.models[m].provider})" for m in chain]
    return StepVerdict(
        Step.FORWARD, "allow", None, "not sent (explain); would try " + ", then ".join(route)
    )


def _caller_rule(rules: AccessRules, principal: Principal, endpoint: str) -> str:
    held = sorted(principal.roles & rules.roles)
    if not held:
        return (
            f"access.roles needs one of [{', '.join(sorted(rules.roles))}]; "
            f"caller has [{', '.join(sorted(principal.roles))}]"
        )
    parts = [f"access.roles: caller has {', '.join(held)}"]
    if rules.subjects is not None:
        listed = principal.subject in rules.subjects
        parts.append(
            f"access.subjects {'lists' if listed else 'does not list'} {principal.subject}"
        )
    if rules.teams is not None:
        listed = principal.team in rules.teams
        team = principal.team or "(no team)"
        parts.append(f"access.teams {'lists' if listed else 'does not list'} {team}")
    allowed = endpoint in rules.endpoints
    parts.append(f"access.endpoints {'includes' if allowed else 'excludes'} {endpoint}")
    return "; ".join(parts)


def _request_rule(rules: AccessRules, request: CaseRequest, refusal: str | None) -> str:
    if refusal is not None:
        return refusal
    parts = [f"access.models includes {request.model}"]
    if rules.max_output_tokens is not None:
        how = "clamp" if rules.clamp else "reject"
        parts.append(f"max_output_tokens {rules.max_output_tokens} (on_exceed: {how})")
    return "; ".join(parts)
