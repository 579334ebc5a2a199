"""Rolling baselines per workflow and policy version, and drift scores, live.

Each finished request adds one ``Sample`` to its workflow's windows: the last
``short_window`` and the last ``long_window`` requests under the workflow's current policy
version (a new version starts new windows: a policy change resets what is expected). The
sampler exports every signal with its baseline and drift score once a second
(``gateway_signal``, ``gateway_drift_score``), never on the request path.

The request path only notes what the sample is made of; the samples are made and added to
the windows by the sampler, a tenth of a second's worth at once (``Window.extend``): a third
of the cost of adding each request as it finishes.

Per process: with several workers each keeps its own windows over the requests it served.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from gateway.boundary.record import BoundaryRecord
from gateway.context import RequestContext
from gateway.observe.config import DriftConfig
from gateway.observe.labels import OTHER, Labels
from gateway.observe.metrics import Metrics
from gateway.observe.signals import Sample, Window, drift_scores
from gateway.steps import Verdict

__all__ = ["Drift"]

# A finished request as ``finish`` notes it: workflow, policy version, reason codes, boundary
# record, fallback, review, output tokens, cost and seconds.
_Pending = tuple[
    str, str, tuple[str, ...], BoundaryRecord | None, bool, bool, int | None, float, float
]
# Requests noted before they are added without waiting for the export.
_PENDING_MAX = 10_000


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
    ) -> None:
        self._config = config
        self._labels = labels
        self._metrics = metrics
        self._windows: dict[str, _Windows] = {}
        self._exported: dict[str, set[str]] = {}
        self._pending: list[_Pending] = []

    def finish(
        self, ctx: RequestContext, verdict: Verdict, seconds: float, workflow: str, cost: float
    ) -> None:
        """A finished request of ``workflow`` (its label) that cost ``cost`` USD."""
        policy = ctx.policy
        if policy is None or workflow == OTHER:
            return  # not a workflow's request (unknown workflow, refused before resolving)
        self._pending.append(
            (
                workflow,
                policy.version,
                verdict.reasons,
                ctx.boundary,
                ctx.fallback is not None,
                ctx.review,
                ctx.tokens_out,
                cost,
                seconds,
            )
        )
        if len(self._pending) >= _PENDING_MAX:  # no export for a while (no sampler running)
            self.fold()

    def fold(self) -> None:
        """Into the windows: the requests noted since the last fold, in order, each
        workflow's run of one policy version at once."""
        pending, self._pending = self._pending, []
        self._fold(pending)

    def folding(self, most: int) -> Iterator[None]:
        """``fold`` the requests noted until now, the oldest ``most`` at a time, pausing after
        each (the sampler's, ten times a second: the work grows with the requests noted, and
        holds the event loop while it runs; the sampler serves the waiting requests in the
        pauses). A ``fold`` in a pause takes the rest, so the order holds."""
        for _ in range(-(-len(self._pending) // most)):
            if not self._pending:
                return
            pending, self._pending = self._pending[:most], self._pending[most:]
            self._fold(pending)
            yield

    def _fold(self, pending: list[_Pending]) -> None:
        runs: dict[str, tuple[str, list[Sample]]] = {}
        for workflow, version, reasons, boundary, fallback, review, tokens, cost, s in pending:
            run = runs.get(workflow)
            if run is None or run[0] != version:
                if run is not None:
                    self._add(workflow, *run)
                run = runs[workflow] = (version, [])
            entities = (
                {"request": boundary.request, "answer": boundary.answer} if boundary else None
            )
            run[1].append(Sample.of(reasons, entities, fallback, review, tokens, cost, s))
        for workflow, run in runs.items():
            self._add(workflow, *run)

    def _add(self, workflow: str, version: str, samples: list[Sample]) -> None:
        windows = self._windows.get(workflow)
        if windows is None or windows.version != version:
            c = self._config
            windows = self._windows[workflow] = _Windows(
                version, Window(c.short_window), Window(c.long_window)
            )
        windows.short.extend(samples)
        windows.long.extend(samples)
        windows.changed = True

    def scores(self, workflow: str) -> dict[str, tuple[float, float, float]]:
        """(value, baseline, score) per signal of ``workflow`` now."""
        self.fold()
        windows = self._windows.get(workflow)
        if windows is None:
            return {}
        return drift_scores(windows.short, windows.long, self._config.min_samples)

    def export(self) -> None:
        """Into the gauges: only workflows with new requests since the last export."""
        for _ in self.exporting():
            pass

    def exporting(self) -> Iterator[None]:
        """``export``, pausing after each workflow's scoring (the sampler's: it serves the
        waiting requests in the pauses)."""
        m = self._metrics
        if m is None:
            return
        self.fold()
        for workflow, windows in list(self._windows.items()):  # a fold in a pause may add one
            if not windows.changed:
                continue
            windows.changed = False
            exported = self._exported.setdefault(workflow, set())
            scores = self.scores(workflow)
            yield
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
