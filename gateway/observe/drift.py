"""Rolling baselines per workflow and policy version, and drift scores, live.

Each finished request adds one ``Sample`` to its workflow's windows: the last
``short_window`` and the last ``long_window`` requests under the workflow's current policy
version (a new version starts new windows: a policy change resets what is expected). The
sampler exports every signal with its baseline and drift score once a second
(``gateway_signal``, ``gateway_drift_score``), never on the request path.

Per process: with several workers each keeps its own windows over the requests it served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.config import ModelConfig
from gateway.context import RequestContext
from gateway.observe.config import DriftConfig
from gateway.observe.labels import OTHER, Labels
from gateway.observe.metrics import Metrics
from gateway.observe.observer import request_cost
from gateway.observe.signals import Sample, Window, drift_scores
from gateway.steps import Verdict

__all__ = ["Drift"]


@dataclass(slots=True)
class _Windows:
    version: str
    short: Window
    long: Window
    changed: bool = field(default=True)


class Drift:
    def __init__(
        self,
        config: DriftConfig,
        labels: Labels,
        metrics: Metrics | None,
        models: Mapping[str, ModelConfig],
    ) -> None:
        self._config = config
        self._models = models
        self._labels = labels
        self._metrics = metrics
        self._windows: dict[str, _Windows] = {}
        self._exported: dict[str, set[str]] = {}

    def finish(self, ctx: RequestContext, verdict: Verdict, seconds: float) -> None:
        policy = ctx.policy
        if policy is None:
            return  # not a workflow's request (unknown workflow, refused before resolving)
        workflow = self._labels.workflow(ctx.workflow)
        if workflow == OTHER:
            return
        boundary = ctx.boundary
        sample = Sample.of(
            verdict.reasons,
            {"request": boundary.request, "answer": boundary.answer} if boundary else None,
            ctx.fallback is not None,
            ctx.review,
            ctx.tokens_out,
            request_cost(ctx, self._models),
            seconds,
        )
        windows = self._windows.get(workflow)
        if windows is None or windows.version != policy.version:
            c = self._config
            windows = self._windows[workflow] = _Windows(
                policy.version, Window(c.short_window), Window(c.long_window)
            )
        windows.short.add(sample)
        windows.long.add(sample)
        windows.changed = True

    def scores(self, workflow: str) -> dict[str, tuple[float, float, float]]:
        """(value, baseline, score) per signal of ``workflow`` now."""
        windows = self._windows.get(workflow)
        if windows is None:
            return {}
        return drift_scores(windows.short, windows.long, self._config.min_samples)

    def export(self) -> None:
        """Into the gauges: only workflows with new requests since the last export."""
        m = self._metrics
        if m is None:
            return
        for workflow, windows in self._windows.items():
            if not windows.changed:
                continue
            windows.changed = False
            exported = self._exported.setdefault(workflow, set())
            scores = self.scores(workflow)
            for signal in exported - scores.keys():  # an entity no longer masked
                scores[signal] = (0.0, 0.0, 0.0)
            for signal, (value, baseline, score) in scores.items():
                entity = signal.partition("mask_rate.")[2]
                if entity and self._labels.entity(entity, None) == OTHER:
                    continue
                m.signal.labels(workflow, signal, "short").set(value)
                m.signal.labels(workflow, signal, "long").set(baseline)
                m.drift_score.labels(workflow, signal).set(score)
                exported.add(signal)
