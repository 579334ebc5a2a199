"""The step observer: every figure comes from what the request recorded.

The pipeline tells it of each step a request leaves (``RequestContext.enter``, the one hook).
When the audit step is left the request is finished, its context complete: metrics, the
access log line, drift signals and spans are all read from it there, in one place, never
from code inside the steps. Leaving the forward step (an attempt made) is when the request
as it left is known: the prompt and tool fingerprints are taken then, before the record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from time import perf_counter

from gateway import errors
from gateway.config import ModelConfig
from gateway.context import RequestContext
from gateway.errors import REASONS
from gateway.limits.cost import model_cost, usd
from gateway.observe.labels import Labels
from gateway.observe.logs import AccessLog
from gateway.observe.metrics import Metrics
from gateway.steps import Step, Verdict, decide

__all__ = ["FAIL_OPEN", "Finisher", "Observer", "request_cost"]

log = logging.getLogger("gateway.observe")

# A store or detector error that the policy let pass: the decision is an allow with this code.
FAIL_OPEN = {
    errors.LIMITS_STORE_UNAVAILABLE.code: "limits_store",
    errors.BOUNDARY_DETECTOR.code: "detector",
}
_LIMIT_REFUSALS = {
    errors.LIMITS_RATE_EXCEEDED.code: "rate",
    errors.LIMITS_BUDGET_EXHAUSTED.code: "budget",
}

_STEP_KEYS = {step: (step.value,) for step in Step}

# Told of each finished request with its verdict and duration (drift, traces).
Finisher = Callable[[RequestContext, Verdict, float], None]


class Observer:
    """The ``StepObserver`` of gateway/context.py, built by ``build_observer``."""

    def __init__(
        self,
        labels: Labels,
        metrics: Metrics | None,
        access: AccessLog | None,
        models: Mapping[str, ModelConfig] | None = None,
        finishers: list[Finisher] | None = None,
        on_forward: Callable[[RequestContext], None] | None = None,
    ) -> None:
        self.labels = labels
        self.metrics = metrics
        self._access = access
        self._models = models or {}
        self._finishers = finishers or []
        self._on_forward = on_forward
        self._failed = False

    def left(self, ctx: RequestContext, step: Step, seconds: float) -> None:
        if step is Step.AUDIT:
            self.finished(ctx)
        elif step is Step.FORWARD and self._on_forward is not None:
            self._on_forward(ctx)

    def finished(self, ctx: RequestContext) -> None:
        """Observe a finished request; a fault here is logged, never the request's."""
        seconds = perf_counter() - ctx.started
        verdict = decide(ctx.decisions)
        try:
            if self.metrics is not None:
                self._count(ctx, verdict, seconds)
            if self._access is not None:
                self._access.write(ctx, verdict, seconds)
            for finish in self._finishers:
                finish(ctx, verdict, seconds)
        except Exception:  # observing must never fail a request; no data leaves here
            if not self._failed:  # once: a bug would otherwise log on every request
                self._failed = True
                log.exception("observing request %s failed", ctx.request_id)

    def _count(self, ctx: RequestContext, verdict: Verdict, seconds: float) -> None:
        m, labels = self.metrics, self.labels
        assert m is not None
        workflow = labels.workflow(ctx.workflow)
        endpoint = labels.endpoint(ctx.endpoint)
        shown = verdict.deciding or verdict.last_note
        reason = labels.reason(shown.code if shown is not None else None)
        m.requests.add((workflow, endpoint, verdict.decision, reason))
        m.request_seconds.observe((workflow, endpoint), seconds)
        m.step_seconds.observe_steps(ctx.timings, _STEP_KEYS)
        for d in ctx.decisions:
            code = d.code
            if code is None:
                continue
            m.reasons.add((workflow, labels.reason(code)))
            if d.outcome == "allow" and (component := FAIL_OPEN.get(code)) is not None:
                m.fail_open.add((workflow, component))
            elif (kind := _LIMIT_REFUSALS.get(code)) is not None and d.outcome != "allow":
                m.limit_refusals.add((workflow, kind))
        request = ctx.request
        model = labels.model(ctx.model_used or (request.model if request is not None else None))
        if ctx.upstream_s is not None:
            m.upstream_seconds.observe((workflow, model), ctx.upstream_s)
        if ctx.first_event:
            m.first_event_seconds.observe((workflow, model), ctx.first_event - ctx.started)
        if ctx.tokens_in:
            m.tokens.add((workflow, model, "in"), ctx.tokens_in)
        if ctx.tokens_out:
            m.tokens.add((workflow, model, "out"), ctx.tokens_out)
        if cost := request_cost(ctx, self._models):
            m.cost.add((workflow, model), cost)
        if (boundary := ctx.boundary) is not None:
            for direction, actions in (("request", boundary.request), ("answer", boundary.answer)):
                for action, entities in actions.items():
                    for entity, n in entities.items():
                        key = (workflow, direction, labels.action(action))
                        m.findings.add((*key, labels.entity(entity, ctx.policy)), n)
        if ctx.fallback is not None:
            reason_of = REASONS.get(ctx.fallback_reason or "")
            trigger = (reason_of.trigger if reason_of is not None else None) or "none"
            kind = ctx.fallback if ctx.fallback in ("model", "message") else "other"
            m.fallbacks.add((workflow, trigger, kind))
        if ctx.review:
            m.reviews.add((workflow,))
        if ctx.candidate is not None and ctx.policy is not None:
            self._candidate(ctx, workflow)

    def _candidate(self, ctx: RequestContext, workflow: str) -> None:
        assert self.metrics is not None
        assert ctx.candidate is not None
        judged = ctx.candidate.recorded(ctx)
        loaded = self.labels.candidate_version(ctx.workflow)
        version = str(judged.get("version"))
        decision = str(judged.get("decision"))
        self.metrics.candidates.add(
            (
                workflow,
                version if version == loaded else "other",
                decision if decision in _DECISIONS else "other",
                "true" if judged.get("differs") else "false",
            )
        )


_DECISIONS = frozenset({"allow", "transform", "masked", "deny", "error"})


def request_cost(ctx: RequestContext, models: Mapping[str, ModelConfig]) -> float:
    """The settled cost, or with no limits to settle it, the same sum from the catalogue's
    prices and the reported tokens (answers a quality check discarded included)."""
    if ctx.actual_usd is not None:
        return ctx.actual_usd
    micro = 0
    if ctx.model_used is not None:
        micro = model_cost(models.get(ctx.model_used), ctx.tokens_in or 0, ctx.tokens_out or 0)
    for name, t_in, t_out in ctx.discarded:
        micro += model_cost(models.get(name), t_in or 0, t_out or 0)
    return usd(micro)
