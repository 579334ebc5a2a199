"""The gateway's Prometheus metrics, with prometheus-client.

Every metric lives in a registry of its own (several apps may run in one test process). With
``PROMETHEUS_MULTIPROC_DIR`` set before the gateway starts, prometheus-client keeps each
worker's values in files in that folder and a scrape of any worker adds them all up
(``render``), so totals are right with ``gateway serve --workers N``.

Labels are bounded by construction (gateway/observe/labels.py). Requests count into plain
dicts (no lock, no ``labels()`` lookup: the event loop is one thread) and ``flush`` moves the
counts into prometheus-client ten times a second and before every scrape: about 0.2 µs per count
instead of 1-2 µs (bench/overhead.py).
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from typing import Literal, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "multiprocess"]

K = TypeVar("K")
_Mode = Literal["livemax", "livesum", "max"]

# Latency buckets (seconds): a step takes microseconds, a model call seconds.
_STEP_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)  # fmt: skip
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0)  # fmt: skip


def multiprocess() -> bool:
    """Whether prometheus-client writes values to PROMETHEUS_MULTIPROC_DIR (read at import)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class _Tally:
    """A counter's increments, kept in a one-item list per label tuple on the request path and
    moved into the prometheus-client counter by ``flush`` (adding to a list item costs a tenth
    of ``labels().inc``)."""

    __slots__ = ("metric", "pending")

    def __init__(self, metric: Counter) -> None:
        self.metric = metric
        # Label values are bounded, so each key's cell is kept for good: a caller may hold on
        # to it (``cell``) and add to it without a lookup.
        self.pending: dict[tuple[str, ...], list[float]] = {}

    def cell(self, key: tuple[str, ...]) -> list[float]:
        """The one-item list ``key``'s increments add up in until the next flush."""
        cell = self.pending.get(key)
        if cell is None:
            cell = self.pending[key] = [0.0]
        return cell

    def add(self, key: tuple[str, ...], amount: float = 1.0) -> None:
        cell = self.pending.get(key)
        if cell is None:
            cell = self.pending[key] = [0.0]
        cell[0] += amount

    def flushing(self) -> Iterator[None]:
        """Move the increments into the counter, pausing after each label tuple."""
        for key, cell in list(self.pending.items()):  # requests may add keys in a pause
            if amount := cell[0]:
                cell[0] = 0.0
                (self.metric.labels(*key) if key else self.metric).inc(amount)
                yield


class _Spread:
    """A histogram's observations, appended to a list per label tuple on the request path and
    counted into the prometheus-client histogram's buckets by ``flush``: sorted once, each
    bucket is one bisection (an append costs a sixth of a bucket search per observation)."""

    __slots__ = ("bounds", "metric", "pending")

    def __init__(self, metric: Histogram, bounds: tuple[float, ...]) -> None:
        self.metric = metric
        self.bounds = bounds
        # Label values are bounded, so each key's list is kept for good: a caller may hold on
        # to its ``append`` (``appenders``).
        self.pending: dict[tuple[str, ...], list[float]] = {}

    def values(self, key: tuple[str, ...]) -> list[float]:
        """The list the observations of ``key`` go into until the next flush."""
        values = self.pending.get(key)
        if values is None:
            values = self.pending[key] = []
        return values

    def observe(self, key: tuple[str, ...], value: float) -> None:
        values = self.pending.get(key)
        if values is None:
            values = self.pending[key] = []
        values.append(value)

    def appenders(self, keys: Mapping[K, tuple[str, ...]]) -> dict[K, Callable[[float], None]]:
        """Per name, the ``append`` of its key's list: ``observe`` without the lookups, for the
        dozen steps of every request."""
        return {name: self.values(key).append for name, key in keys.items()}

    def flushing(self) -> Iterator[None]:
        """Count the observations into the histogram, pausing after each label tuple."""
        bounds = self.bounds
        for key, values in list(self.pending.items()):  # requests may add keys in a pause
            if not values:
                continue
            batch = sorted(values)
            values.clear()
            child = self.metric.labels(*key) if key else self.metric
            # prometheus-client keeps one (not cumulative) value per bucket and the sum; its
            # public observe() takes one value at a time, so the batch goes in through them.
            low = 0
            for i, bound in enumerate(bounds):
                high = bisect_right(batch, bound, low)
                if high > low:
                    child._buckets[i].inc(high - low)
                    low = high
            if low < len(batch):
                child._buckets[len(bounds)].inc(len(batch) - low)
            child._sum.inc(sum(batch))
            yield


class Metrics:
    """Every metric the gateway exports (docs/observability.md lists them with labels)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        self._batched: list[_Tally | _Spread] = []

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> _Tally:
            tally = _Tally(Counter(name, doc, labels, registry=r))
            self._batched.append(tally)
            return tally

        def histogram(
            name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]
        ) -> _Spread:
            spread = _Spread(Histogram(name, doc, labels, registry=r, buckets=buckets), buckets)
            self._batched.append(spread)
            return spread

        def gauge(name: str, doc: str, labels: tuple[str, ...], mode: _Mode) -> Gauge:
            return Gauge(name, doc, labels, registry=r, multiprocess_mode=mode)

        self.requests = counter(
            "gateway_requests",
            "Requests by workflow, endpoint, decision and the deciding reason code.",
            ("workflow", "endpoint", "decision", "reason"),
        )
        self.reasons = counter(
            "gateway_reasons", "Every reason code a request carried.", ("workflow", "reason")
        )
        self.request_seconds = histogram(
            "gateway_request_duration_seconds",
            "Whole request, from arrival to its audit record.",
            ("workflow", "endpoint"),
            _REQUEST_BUCKETS,
        )
        self.step_seconds = histogram(
            "gateway_step_duration_seconds",
            "Time in each step of the request path (gateway/steps.py).",
            ("step",),
            _STEP_BUCKETS,
        )
        self.upstream_seconds = histogram(
            "gateway_upstream_duration_seconds",
            "From the first upstream attempt to the answer's head.",
            ("workflow", "model"),
            _REQUEST_BUCKETS,
        )
        self.first_event_seconds = histogram(
            "gateway_time_to_first_event_seconds",
            "Streams: from arrival to the first event relayed to the client.",
            ("workflow", "model"),
            _REQUEST_BUCKETS,
        )
        self.tokens = counter(
            "gateway_tokens",
            "Tokens as the provider reported them.",
            ("workflow", "model", "direction"),
        )
        self.cost = counter("gateway_cost_usd", "Settled cost in USD.", ("workflow", "model"))
        self.findings = counter(
            "gateway_boundary_findings",
            "Entities the data boundary found, by action and direction (counts only).",
            ("workflow", "direction", "action", "entity"),
        )
        self.fallbacks = counter(
            "gateway_fallbacks",
            "Answers from a fallback, by the trigger that set it off and its kind.",
            ("workflow", "trigger", "kind"),
        )
        self.reviews = counter(
            "gateway_review_flags", "Requests flagged for manual review.", ("workflow",)
        )
        self.limit_refusals = counter(
            "gateway_limit_refusals",
            "Requests refused by a rate limit or a budget.",
            ("workflow", "kind"),
        )
        self.fail_open = counter(
            "gateway_fail_open",
            "A store or detector failed and the policy let the request pass.",
            ("workflow", "component"),
        )
        self.candidates = counter(
            "gateway_candidate_verdicts",
            "A candidate policy's would-be decision on live traffic.",
            ("workflow", "candidate_version", "decision", "differs"),
        )
        self.reloads = counter("gateway_policy_reloads", "Policy reloads by result.", ("result",))
        self.policy_info = gauge(
            "gateway_policy_version_info",
            "1 for the policy version each workflow runs now.",
            ("workflow", "version"),
            "livemax",
        )
        self.budget = gauge(
            "gateway_budget_usd",
            "A workflow-wide budget of the loaded policy (per: workflow or global), by period.",
            ("workflow", "period"),
            "livemax",
        )
        self.budget_spent = gauge(
            "gateway_budget_spent_usd",
            "Spent this period of a workflow-wide budget (scope: workflow or global).",
            ("workflow", "scope", "period"),
            "livemax",
        )
        self.budget_remaining = gauge(
            "gateway_budget_remaining_usd",
            "What remains this period of a workflow-wide budget: its limit less what is spent"
            " and what admitted requests hold.",
            ("workflow", "scope", "period"),
            "livemax",
        )
        self.audit_queue = gauge(
            "gateway_audit_queue_depth", "Audit records waiting for a commit.", (), "livesum"
        )
        self.audit_spool = gauge(
            "gateway_audit_spool_bytes", "Bytes waiting in the audit spool.", (), "max"
        )
        self.audit_commit_seconds = histogram(
            "gateway_audit_commit_seconds",
            "One batch commit to the audit sink.",
            (),
            _STEP_BUCKETS,
        )
        self.breaker_open = gauge(
            "gateway_breaker_open",
            "1 while the circuit of a provider and model is open.",
            ("provider", "model"),
            "livemax",
        )
        self.fingerprint_requests = counter(
            "gateway_fingerprint_requests",
            "Requests per prompt or tool-set fingerprint per workflow.",
            ("workflow", "kind", "fingerprint"),
        )
        self.new_fingerprints = counter(
            "gateway_new_fingerprints",
            "A prompt or tool-set fingerprint not seen before in a workflow.",
            ("workflow", "kind"),
        )
        self.review_backlog = gauge(
            "gateway_review_backlog",
            "Review items waiting (state pending), and those unclaimed past their SLA (overdue).",
            ("workflow", "state"),
            "livemax",  # every worker reads the same review store
        )
        self.drift_score = gauge(
            "gateway_drift_score",
            "A signal's short-window rate against its long-window baseline (0: no drift).",
            ("workflow", "signal"),
            "livemax",
        )
        self.signal = gauge(
            "gateway_signal",
            "A behaviour signal per workflow, over the short window and the baseline.",
            ("workflow", "signal", "window"),
            "livemax",
        )
        self.version_requests = counter(
            "gateway_policy_version_requests",
            "Requests by the policy version that decided them (a loaded live or candidate"
            " version, else 'other') and its arm: live, or candidate for a canary's share.",
            ("workflow", "version", "arm"),
        )
        self.rollout_aborts = counter(
            "gateway_rollout_aborts",
            "Canaries dropped to 0% by their abort_on thresholds, by the signal that crossed.",
            ("workflow", "signal"),
        )
        self.spans_dropped = counter(
            "gateway_spans_dropped", "Trace spans dropped: the export queue was full.", ()
        )

    def flush(self) -> None:
        """Move what requests counted since the last flush into the exported metrics (ten
        times a second, and before a scrape)."""
        for _ in self.flushing():
            pass

    def flushing(self) -> Iterator[None]:
        """``flush``, pausing after each label tuple: the sampler serves the waiting requests
        in the pauses (flushed at once at 3,000 requests a second it held the event loop for
        over a millisecond ten times a second: branch ``holds``)."""
        for batched in self._batched:
            yield from batched.flushing()

    def render(self) -> bytes:
        """The exposition text: every worker's values in multiprocess mode."""
        self.flush()
        return self.render_flushed()

    def render_flushed(self) -> bytes:
        """``render`` without the flush, safe in a worker thread (the flush is not)."""
        if multiprocess():
            scrape = CollectorRegistry()
            MultiProcessCollector(scrape)  # type: ignore[no-untyped-call]
            return generate_latest(scrape)
        return generate_latest(self.registry)

    @staticmethod
    def process_exit() -> None:
        """Drop this worker's live gauges from later scrapes (multiprocess mode)."""
        if multiprocess():
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
