"""The rule behind each step's decision in ``gateway policy explain``: which policy key, entity
or limit decided, said from the policy and from what the step recorded on the context."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config import GatewayConfig
from gateway.errors import FALLBACK_REVIEW, QUALITY_UNCHECKED, REASONS
from gateway.policy.compile import AccessRules, CompiledPolicy
from gateway.steps import Decision, Step
from gateway.tools.cases import CasePrincipal
from gateway.tools.offline import Run

__all__ = ["Rules"]


class Rules:
    """Says why each step decided what it did for one offline run."""

    def __init__(
        self,
        config: GatewayConfig,
        policies: Mapping[str, CompiledPolicy],
        policy: CompiledPolicy | None,
        caller: CasePrincipal,
        run: Run,
        found: str,
    ) -> None:
        """``found``: what the boundary found in the request, summed up (explain's findings)."""
        self._config, self._policies, self._policy = config, policies, policy
        self._caller, self._run, self._found = caller, run, found

    def of(self, step: Step, d: Decision, nth: int) -> str:
        """The rule of ``d``, the decision of the ``nth`` entry of ``step``."""
        policy, ctx = self._policy, self._run.ctx
        refused = d.outcome in ("deny", "error")
        message = self._refusal() if refused else ""
        if step is Step.AUTHENTICATE:
            return message or f"a gateway key of {self._caller.subject} (made by explain)"
        if step is Step.RESOLVE_POLICY:
            if policy is None:
                loaded = ", ".join(sorted(self._policies)) or "none"
                return f"no policy defines workflow '{ctx.workflow}' (loaded: {loaded})"
            return f"{policy.path} ({policy.version})"
        if policy is None:
            return message
        if step is Step.ACCESS:
            if nth == 1:
                return _caller_rule(policy.access, self._caller, ctx.endpoint)
            return message or _request_rule(policy.access, ctx.request.model if ctx.request else "")
        if step is Step.READ_REQUEST:
            request = ctx.request
            return message or (f"{request.api} request, model {request.model}" if request else "")
        if step is Step.LIMITS:
            return _joined(message, _limits_rule(policy, ctx.reserved_usd))
        if step is Step.BOUNDARY:
            return self._boundary(policy, message)
        if step is Step.FORWARD:
            return message or self._forward(policy)
        if step is Step.QUALITY:
            if d.code == QUALITY_UNCHECKED.code:
                return "quality.streaming: pass: the stream was relayed unchecked"
            return _joined(_quality_rule(policy), (d.code or "") if refused else "passed")
        if step is Step.FALLBACK:
            return self._fallback(policy, d)
        if step is Step.INSPECT_ANSWER:
            return message or self._answer()
        return message

    def _refusal(self) -> str:
        """What the client was told; a fallback's answer is no refusal message."""
        run = self._run
        if run.ctx.fallback == "message":
            return "refused; the fallback message answered instead"
        return run.client_text

    def _boundary(self, policy: CompiledPolicy, message: str) -> str:
        data = policy.data
        if data is None:
            return "no data section: nothing is inspected"
        summary = self._found
        if message:
            return f"{summary}: {message}"
        return summary + (" (shadow mode: traffic passes unchanged)" if data.shadow else "")

    def _forward(self, policy: CompiledPolicy) -> str:
        ctx = self._run.ctx
        if ctx.request is None:
            return ""
        models = self._config.models
        route = [
            f"{m} (provider {models[m].provider})"
            for m in policy.model_chain(ctx.request.model)
            if m in models
        ]
        tried = f"; answered by {ctx.model_used}" if ctx.model_used != ctx.request.model else ""
        return "not sent (explain); would try " + ", then ".join(route) + tried

    def _fallback(self, policy: CompiledPolicy, d: Decision) -> str:
        ctx = self._run.ctx
        if d.code == FALLBACK_REVIEW.code:
            return "fallback.review: the request is flagged for manual review"
        reason = REASONS.get(d.code or "")
        trigger = reason.trigger if reason is not None else None
        if ctx.fallback == "model" or d.code != ctx.fallback_reason:
            return f"fallback.on includes {trigger}: the next of fallback.models answers"
        return f"fallback.on includes {trigger}: fallback.message answers"

    def _answer(self) -> str:
        boundary = self._run.ctx.boundary
        if boundary is None:
            return "answers are not inspected"
        found = ", ".join(
            f"{entity} x{n} {action}"
            for action, entities in sorted(boundary.answer.items())
            for entity, n in sorted(entities.items())
        )
        return f"answer: {found}" if found else "answer: nothing found"


def _joined(*parts: str) -> str:
    return ": ".join(p for p in parts if p)


def _limits_rule(policy: CompiledPolicy, reserved_usd: float | None) -> str:
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
    reserved = f", ${reserved_usd:g} reserved" if reserved_usd else ""
    return "; ".join(parts) + f" (counters start empty: explain keeps none{reserved})"


def _quality_rule(policy: CompiledPolicy) -> str:
    quality = policy.source.quality
    if quality is None:
        return "no quality section"
    checks = quality.model_dump(exclude_defaults=True, exclude={"streaming"})
    return "quality: " + ", ".join(f"{k} {v}" for k, v in sorted(checks.items()))


def _caller_rule(rules: AccessRules, caller: CasePrincipal, endpoint: str) -> str:
    roles = set(caller.roles)
    held = sorted(roles & rules.roles)
    if not held:
        return (
            f"access.roles needs one of [{', '.join(sorted(rules.roles))}]; "
            f"caller has [{', '.join(sorted(roles))}]"
        )
    parts = [f"access.roles: caller has {', '.join(held)}"]
    if rules.subjects is not None:
        listed = caller.subject in rules.subjects
        parts.append(f"access.subjects {'lists' if listed else 'does not list'} {caller.subject}")
    if rules.teams is not None:
        listed = caller.team in rules.teams
        team = caller.team or "(no team)"
        parts.append(f"access.teams {'lists' if listed else 'does not list'} {team}")
    allowed = endpoint in rules.endpoints
    parts.append(f"access.endpoints {'includes' if allowed else 'excludes'} {endpoint}")
    return "; ".join(parts)


def _request_rule(rules: AccessRules, model: str) -> str:
    parts = [f"access.models includes {model}"]
    if rules.max_output_tokens is not None:
        how = "clamp" if rules.clamp else "reject"
        parts.append(f"max_output_tokens {rules.max_output_tokens} (on_exceed: {how})")
    return "; ".join(parts)
