"""``gateway policy explain``: each step's decision for one message, and the rule behind it.

It runs the message through the real pipeline, the one ``gateway policy test`` runs
(gateway/tools/offline.py: the server's steps with the edges replaced: the model is the mock,
stores are in memory and fresh, nothing is audited), then reads what each step recorded. So
its verdict is the live gateway's, fallbacks and reviews included. It never shows a detected
value: findings give their type, span and a masked preview, and the texts it prints have every
value the policy's detector finds replaced by that preview.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gateway.boundary.actions import TOKEN_PATTERN
from gateway.boundary.batch import find_many
from gateway.boundary.findings import Finding
from gateway.boundary.policy import BoundaryPolicy
from gateway.config import GatewayConfig
from gateway.context import RequestContext
from gateway.errors import REASONS, GatewayError
from gateway.policy.compile import CompiledPolicy
from gateway.steps import Decision, Outcome, Step, decide
from gateway.tools.cases import CasePrincipal, CaseRequest
from gateway.tools.explain_rules import Rules
from gateway.tools.offline import OfflineGateway, request_body

__all__ = ["EntityFinding", "Explanation", "StepVerdict", "explain", "preview"]

# Listed only when they recorded a decision: no policy rule of theirs applied otherwise (the
# pipeline enters fallback on every refusal, to see whether the policy answers it).
_QUIET = frozenset({Step.GATEWAY, Step.FALLBACK, Step.RELAY, Step.AUDIT})


@dataclass(frozen=True, slots=True)
class StepVerdict:
    """One step as it ran: its name, its outcome, its reason code and the rule that decided."""

    step: Step
    outcome: Outcome
    code: str | None
    rule: str


@dataclass(frozen=True, slots=True)
class EntityFinding:
    """A value the boundary found in the request: where (text index and span), what, by which
    rule, the action the policy takes on it, and a masked preview (never the value)."""

    text: int
    start: int
    end: int
    entity: str
    rule: str
    score: float
    action: str
    preview: str


@dataclass(slots=True)
class Explanation:
    """``decision`` and ``header`` are ``decide``'s over every decision the pipeline recorded;
    ``status`` is what the live gateway would answer."""

    workflow: str
    subject: str
    roles: list[str]
    team: str | None
    steps: list[StepVerdict] = field(default_factory=list)
    findings: list[EntityFinding] = field(default_factory=list)
    policy_file: str | None = None
    policy_version: str | None = None
    mode: str | None = None
    status: int | None = None
    decision: str = "allow"
    header: str = "allow"
    reasons: list[str] = field(default_factory=list)
    fallback: str | None = None  # "model" or "message": what answered instead
    review: bool = False
    # The request's texts as they reached the model; None when nothing did.
    sent: list[str] | None = None
    answer: str | None = None  # what the caller got, when it was an answer (status 200)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


async def explain(
    config: GatewayConfig,
    policies: Mapping[str, CompiledPolicy],
    workflow: str,
    caller: CasePrincipal,
    request: CaseRequest,
    answer: str | None = None,
) -> Explanation:
    """Run ``request`` by ``caller`` through the offline pipeline; ``answer`` is what the model
    replies (default: the mock quotes the last user message as it arrived)."""
    out = Explanation(workflow, caller.subject, sorted(caller.roles), caller.team)
    policy = policies.get(workflow)
    if policy is not None:
        out.policy_file, out.policy_version = policy.path, policy.version
        out.mode = policy.source.mode
    with tempfile.TemporaryDirectory(prefix="gateway-policy-explain-") as scratch:
        async with OfflineGateway(config, dict(policies), Path(scratch), [caller]) as gateway:
            run = await gateway.send(workflow, caller, request, answer)
    data = policy.data if policy is not None else None
    if data is not None and run.ctx.request is not None:
        out.findings = await _findings(data, request, policy)
    if (chosen := run.ctx.policy) is not None:  # the version the one assignment picked
        out.policy_file, out.policy_version = chosen.path, chosen.version
        out.mode = chosen.source.mode
    verdict = decide(run.ctx.decisions)
    out.status, out.decision, out.header = run.status, verdict.outcome, verdict.header
    out.reasons = list(dict.fromkeys(verdict.reasons))
    out.fallback, out.review = run.ctx.fallback, run.ctx.review
    if run.sent is not None:
        out.sent = [await _masked(data, text) for text in run.sent]
    if run.status == 200:
        out.answer = await _masked(data, run.client_text)
    rules = Rules(config, policies, policy, caller, run, _summary(out.findings))
    out.steps = [
        StepVerdict(step, d.outcome, d.code, rules.of(step, d, nth))
        for step, d, nth in _rows(run.ctx)
    ]
    return out


def preview(value: str) -> str:
    """A value shown without showing it: at most an eighth of it at each end (four characters
    at most), the rest starred. ``4111 1111 1111 1111`` -> ``41***************11``."""
    keep = min(4, len(value) // 8)
    if not keep:
        return "*" * len(value)
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


def _rows(ctx: RequestContext) -> Iterable[tuple[Step, Decision, int]]:
    """``(step, decision, nth entry of that step)`` in the order the steps ran.

    A step entered more than once in a row of retries (forward, quality) is one row; access
    is two (the caller, then the request). A step's decisions go to its last entry; a step
    that decided without being entered (a fallback model is chosen inside forward) is placed
    in request order.
    """
    entered: list[Step] = []
    for step, _ in ctx.timings:
        if step not in entered or (step is Step.ACCESS and entered[-1] is not Step.ACCESS):
            entered.append(step)
    if ctx.step_since and ctx.step not in entered:
        entered.append(ctx.step)
    by_step: dict[Step, list[Decision]] = {}
    for d in ctx.decisions:
        by_step.setdefault(d.step, []).append(d)
    order = list(Step)
    for step in by_step:
        if step not in entered:
            at = next(
                (i for i, s in enumerate(entered) if order.index(s) > order.index(step)),
                len(entered),
            )
            entered.insert(at, step)
    refused = _refused_step(ctx)
    if refused is not None:  # the step refused, then the fallback message answered
        by_step.setdefault(refused.step, []).append(refused)
    seen: dict[Step, int] = {}
    last = {step: i for i, step in enumerate(entered)}
    for i, step in enumerate(entered):
        nth = seen[step] = seen.get(step, 0) + 1
        decided = by_step.get(step, []) if last[step] == i else []
        if not decided:
            if step not in _QUIET:
                yield step, Decision(step, "allow"), nth
            continue
        for d in decided:
            yield step, d, nth


def _refused_step(ctx: RequestContext) -> Decision | None:
    """The refusal a fallback message answered: the pipeline records only the fallback's
    decision (so the outcome is the answer's), but the step that refused ran just before it."""
    if ctx.fallback != "message" or ctx.fallback_reason is None:
        return None
    steps = [step for step, _ in ctx.timings]
    if Step.FALLBACK not in steps or steps.index(Step.FALLBACK) == 0:
        return None
    step = steps[steps.index(Step.FALLBACK) - 1]
    reason = REASONS.get(ctx.fallback_reason)
    failed = reason is not None and (reason.status >= 500 or reason.code.startswith("upstream."))
    return Decision(step, "error" if failed else "deny", ctx.fallback_reason)


def _summary(findings: list[EntityFinding]) -> str:
    if not findings:
        return "data: nothing found"
    counts: dict[tuple[str, str], int] = {}
    for f in findings:
        counts[(f.entity, f.action)] = counts.get((f.entity, f.action), 0) + 1
    return "data.entities: " + ", ".join(
        f"{entity} x{n} {action}" for (entity, action), n in sorted(counts.items())
    )


async def _findings(
    data: BoundaryPolicy, request: CaseRequest, policy: CompiledPolicy | None
) -> list[EntityFinding]:
    """What the policy's detector finds in the request as the client sent it."""
    try:
        parsed = request.surface.parse(request_body(request, policy))
        texts = [slot.text for slot in parsed.texts]
    except GatewayError:
        return []
    found = await find_many(data.detector, texts)
    return [
        EntityFinding(
            i, f.start, f.end, f.entity, f.rule, round(f.score, 2), data.action(f.entity),
            preview(text[f.start : f.end]),
        )
        for i, (text, fs) in enumerate(zip(texts, found, strict=True))
        for f in fs
    ]  # fmt: skip


async def _masked(data: BoundaryPolicy | None, text: str) -> str:
    """``text`` with every value the policy's detector finds in it shown as its preview
    (the gateway's own tokens and placeholders are kept: they are what left)."""
    if data is None or not text:
        return text
    [found] = await find_many(data.detector, [text])
    tokens = [(m.start(), m.end()) for m in TOKEN_PATTERN.finditer(text)]
    out, at = [], 0
    for f in sorted(found, key=lambda f: f.start):
        if f.start < at or _inside(f, tokens):
            continue
        out += [text[at : f.start], preview(text[f.start : f.end])]
        at = f.end
    return "".join(out) + text[at:]


def _inside(f: Finding, spans: list[tuple[int, int]]) -> bool:
    return any(start <= f.start and f.end <= end for start, end in spans)
