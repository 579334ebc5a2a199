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
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING

from gateway import errors
from gateway.config import ModelConfig
from gateway.context import RequestContext
from gateway.errors import REASONS
from gateway.limits.cost import model_cost, usd
from gateway.observe.labels import Labels
from gateway.observe.logs import AccessLog
from gateway.observe.metrics import Metrics
from gateway.steps import Step, Verdict, decide

if TYPE_CHECKING:  # drift.py imports request_cost from here
    from gateway.observe.drift import Drift

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
_AUDIT, _FORWARD = Step.AUDIT, Step.FORWARD

# Told of each finished request with its verdict and duration (traces).
Finisher = Callable[[RequestContext, Verdict, float], None]


@dataclass(slots=True)
class _Row:
    """Where a request of one (workflow, endpoint, decision, reason, model) counts: its
    metrics' pending cells and lists, looked up once per label tuple (labels are bounded)."""

    requests: list[float]
    seconds: Callable[[float], None]
    upstream: Callable[[float], None]
    first_event: Callable[[float], None]
    tokens_in: list[float]
    tokens_out: list[float]
    cost: list[float]


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
        drift: Drift | None = None,
    ) -> None:
        self.labels = labels
        self.metrics = metrics
        self._access = access
        self._models = models or {}
        # Models with a price: any other answer costs nothing, without the arithmetic.
        self._priced = frozenset(
            name for name, m in self._models.items() if m.usd_per_mtok_in or m.usd_per_mtok_out
        )
        self._finishers = list(finishers or ())
        self._on_forward = on_forward
        self._drift = drift
        self._failed = False
        self._rows: dict[tuple[str, str, str, str, str], _Row] = {}
        self._steps = metrics.step_seconds.appenders(_STEP_KEYS) if metrics is not None else {}

    def finish_with(self, finisher: Finisher) -> None:
        """Also tell ``finisher`` of each finished request, after the others."""
        self._finishers.append(finisher)

    def left(self, ctx: RequestContext, step: Step, seconds: float) -> None:
        # Called at every step, for the two it acts on. Module constants: an enum member read
        # from its class costs about four plain attribute reads (Python 3.11).
        if step is _AUDIT:
            self.finished(ctx)
        elif step is _FORWARD and self._on_forward is not None:
            self._on_forward(ctx)

    def finished(self, ctx: RequestContext) -> None:
        """Observe a finished request; a fault here is logged, never the request's."""
        seconds = perf_counter() - ctx.started
        verdict = decide(ctx.decisions)
        try:
            if self.metrics is not None or self._drift is not None:
                workflow = self.labels.workflow(ctx.workflow)
                cost = (
                    request_cost(ctx, self._models)
                    if ctx.actual_usd is not None or ctx.discarded or ctx.model_used in self._priced
                    else 0.0
                )
                if self.metrics is not None:
                    self._count(ctx, verdict, seconds, workflow, cost)
                if self._drift is not None:
                    self._drift.finish(ctx, verdict, seconds, workflow, cost)
            if self._access is not None:
                self._access.write(ctx, verdict, seconds)
            for finish in self._finishers:
                finish(ctx, verdict, seconds)
        except Exception:  # observing must never fail a request; no data leaves here
            if not self._failed:  # once: a bug would otherwise log on every request
                self._failed = True
                log.exception("observing request %s failed", ctx.request_id)

    def _count(
        self, ctx: RequestContext, verdict: Verdict, seconds: float, workflow: str, cost: float
    ) -> None:
        m, labels = self.metrics, self.labels
        assert m is not None
        request = ctx.request
        model = labels.model(ctx.model_used or (request.model if request is not None else None))
        shown = verdict.deciding or verdict.last_note
        reason = labels.reason(shown.code if shown is not None else None)
        key = (workflow, labels.endpoint(ctx.endpoint), verdict.decision, reason, model)
        row = self._rows.get(key) or self._row(key)
        row.requests[0] += 1
        row.seconds(seconds)
        steps = self._steps
        for step, took in ctx.timings:
            steps[step](took)
        if verdict.reasons:
            self._reasons(ctx, workflow)
        if ctx.upstream_s is not None:
            row.upstream(ctx.upstream_s)
        if ctx.first_event:
            row.first_event(ctx.first_event - ctx.started)
        if ctx.tokens_in:
            row.tokens_in[0] += ctx.tokens_in
        if ctx.tokens_out:
            row.tokens_out[0] += ctx.tokens_out
        if cost:
            row.cost[0] += cost
        if (boundary := ctx.boundary) is not None:
            for direction, actions in (("request", boundary.request), ("answer", boundary.answer)):
                for action, entities in actions.items():
                    for entity, n in entities.items():
                        key3 = (workflow, direction, labels.action(action))
                        m.findings.add((*key3, labels.entity(entity, ctx.policy)), n)
        if ctx.fallback is not None:
            reason_of = REASONS.get(ctx.fallback_reason or "")
            trigger = (reason_of.trigger if reason_of is not None else None) or "none"
            kind = ctx.fallback if ctx.fallback in ("model", "message") else "other"
            m.fallbacks.add((workflow, trigger, kind))
        if ctx.review:
            m.reviews.add((workflow,))
        if ctx.candidate is not None and ctx.policy is not None:
            self._candidate(ctx, workflow)

    def _row(self, key: tuple[str, str, str, str, str]) -> _Row:
        m = self.metrics
        assert m is not None
        workflow, endpoint, decision, reason, model = key
        row = self._rows[key] = _Row(
            m.requests.cell((workflow, endpoint, decision, reason)),
            m.request_seconds.values((workflow, endpoint)).append,
            m.upstream_seconds.values((workflow, model)).append,
            m.first_event_seconds.values((workflow, model)).append,
            m.tokens.cell((workflow, model, "in")),
            m.tokens.cell((workflow, model, "out")),
            m.cost.cell((workflow, model)),
        )
        return row

    def _reasons(self, ctx: RequestContext, workflow: str) -> None:
        m, labels = self.metrics, self.labels
        assert m is not None
        for d in ctx.decisions:
            code = d.code
            if code is None:
                continue
            m.reasons.add((workflow, labels.reason(code)))
            if d.outcome == "allow" and (component := FAIL_OPEN.get(code)) is not None:
                m.fail_open.add((workflow, component))
            elif (kind := _LIMIT_REFUSALS.get(code)) is not None and d.outcome != "allow":
                m.limit_refusals.add((workflow, kind))

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
