"""Once a second: what is state rather than a request (the loaded policy versions, reloads,
the audit queue and spool, open circuits, a breaker store that could not be reached, the
spend of workflow-wide budgets), read into gauges and counters. The review backlog (a query
of the review store) is read every ``REVIEW_INTERVAL_S``.

The requests' counts are flushed into the exported metrics, and their drift samples folded
into the windows, every ``FOLD_S``: that work grows with the requests served since the last
time, and done once a second at 4,000 requests a second it held the event loop for several
milliseconds, every request in flight waiting (docs/performance.md, branch ``tail``). Done
ten times a second it still held it for 0.5-2 ms, so it is done in slices of about
``SLICE_S``, the waiting requests served between them (branch ``holds``).

Reloads are seen as a change of the live set's generation (applied) or of the last reload
error (failed): two reloads within one second count as one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from gateway.audit.writer import AuditWriter
from gateway.config import ModelConfig
from gateway.limits.step import Limits
from gateway.limits.store import StoreError
from gateway.observe.drift import Drift
from gateway.observe.metrics import Metrics
from gateway.observe.observer import FAIL_OPEN
from gateway.policy.compile import CompiledPolicy
from gateway.policy.registry import PolicyRegistry, ReloadError
from gateway.review.store import ReviewStore, StoreUnavailable
from gateway.upstream.breaker import Breaker, RedisBreaker

__all__ = ["Sampler"]

log = logging.getLogger("gateway.observe")

INTERVAL_S = 1.0
FOLD_S = 0.1
REVIEW_INTERVAL_S = 5.0
SLICE_S = 0.0002  # the sampler's work holds the event loop about this long at a time
_FOLD_MOST = 64  # requests' drift samples folded at a time: 0.1 ms (0.2 on a loaded host)
_FOLDS = round(INTERVAL_S / FOLD_S)  # per sampling


class Sampler:
    def __init__(
        self, metrics: Metrics, registry: PolicyRegistry, models: Mapping[str, ModelConfig]
    ) -> None:
        self._metrics = metrics
        self._registry = registry
        # circuit key -> (provider, catalogue model) label values
        self._circuits = {
            f"{m.provider}/{m.upstream_model}": (m.provider, name) for name, m in models.items()
        }
        self._breaker: Breaker | None = None
        self._limits: Limits | None = None
        self._drift: Drift | None = None
        self._unreachable = 0
        self._writer: AuditWriter | None = None
        self._reviews: ReviewStore | None = None
        self._backlog: set[tuple[str, str]] = set()
        self._generation = registry.current.generation
        self._error: ReloadError | None = registry.last_error
        self._versions: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        # Counters an alert takes increase() of exist from the start at 0: a series born at 1
        # shows no increase, and the first failure would go unseen.
        for result in ("applied", "failed", "failed_candidates"):
            metrics.reloads.metric.labels(result)
        metrics.fail_open.metric.labels("none", "breaker_store")  # not one workflow's

    def watch_drift(self, drift: Drift) -> None:
        self._drift = drift

    def watch_breaker(self, breaker: Breaker | None) -> None:
        self._breaker = breaker

    def watch_audit(self, writer: AuditWriter) -> None:
        self._writer = writer

    def watch_reviews(self, store: ReviewStore) -> None:
        self._reviews = store

    async def _review_backlog(self) -> None:
        """Pending and overdue items per workflow; a workflow not loaded counts as ``other``
        (labels stay bounded), one whose backlog emptied goes back to 0."""
        if self._reviews is None:
            return
        try:
            counts = await self._reviews.counts(time.time())
        except StoreUnavailable as exc:
            log.warning("review backlog not sampled: %s", exc)
            return
        loaded = self._registry.current.policies
        values: dict[tuple[str, str], float] = {}
        for workflow, c in counts.items():
            name = workflow if workflow in loaded else "other"
            for state in ("pending", "overdue"):
                values[(name, state)] = values.get((name, state), 0.0) + c[state]
        for key in self._backlog - values.keys():
            values[key] = 0.0
        for (workflow, state), value in values.items():
            self._metrics.review_backlog.labels(workflow, state).set(value)
        self._backlog = set(values)

    def watch_limits(self, limits: Limits) -> None:
        self._limits = limits

    def start(self) -> None:
        self.sample()
        self._task = asyncio.create_task(self._run(), name="observe-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.sample()  # the last counts before the process goes

    async def _run(self) -> None:
        last_reviews = 0.0
        folds = 0
        while True:
            await asyncio.sleep(FOLD_S)
            folds += 1
            try:
                await _sliced(self._folding())
                if folds % _FOLDS:
                    continue
                if time.monotonic() - last_reviews >= REVIEW_INTERVAL_S:
                    last_reviews = time.monotonic()
                    await self._review_backlog()
                # The sampling and the scoring: pieces of their own, the requests waiting
                # served between them.
                await asyncio.sleep(0)
                self.sample()
                if self._drift is not None:
                    await asyncio.sleep(0)
                    await _sliced(self._drift.exporting())
                if self._writer is not None:
                    size = await asyncio.to_thread(_size, self._writer.spool_path)
                    self._metrics.audit_spool.set(size)
                await self._spend()
            except Exception:  # a sampling bug must not stop the sampling for good
                log.exception("metrics sampling failed")

    def _folding(self) -> Iterator[None]:
        yield from self._metrics.flushing()
        if self._drift is not None:
            yield from self._drift.folding(_FOLD_MOST)

    def sample(self) -> None:
        m = self._metrics
        self._policies()
        if self._writer is not None:
            m.audit_queue.set(self._writer.depth)
        breaker = self._breaker
        if breaker is not None:
            now_open = set(breaker.open_circuits())
            for key, (provider, model) in self._circuits.items():
                m.breaker_open.labels(provider, model).set(1 if key in now_open else 0)
            if isinstance(breaker, RedisBreaker) and breaker.unreachable > self._unreachable:
                m.fail_open.add(("none", "breaker_store"), breaker.unreachable - self._unreachable)
                self._unreachable = breaker.unreachable
        m.flush()

    def _policies(self) -> None:
        m, current = self._metrics, self._registry.current
        if current.generation != self._generation:
            self._generation = current.generation
            m.reloads.add(("applied",))
        if (error := self._registry.last_error) is not self._error:
            self._error = error
            if error is not None:
                m.reloads.add(("failed_candidates" if error.candidates else "failed",))
        versions = {name: p.version for name, p in current.policies.items()}
        if versions != self._versions:
            for name, version in self._versions.items():
                if versions.get(name) != version:
                    m.policy_info.labels(name, version).set(0)
            for name, version in versions.items():
                m.policy_info.labels(name, version).set(1)
                for component in FAIL_OPEN.values():
                    m.fail_open.metric.labels(name, component)
            self._versions = versions
            self._budgets(current.policies)

    def _budgets(self, policies: Mapping[str, CompiledPolicy]) -> None:
        """The loaded workflow-wide budgets: what the burn-rate alert divides by."""
        for name, policy in policies.items():
            limits = policy.source.limits
            day = month = 0.0
            for rule in limits.budget if limits is not None else ():
                if rule.per in ("workflow", "global"):
                    day = rule.usd_per_day or day
                    month = rule.usd_per_month or month
            self._metrics.budget.labels(name, "day").set(day)
            self._metrics.budget.labels(name, "month").set(month)

    async def _spend(self) -> None:
        """Spent and remaining of each workflow-wide budget, read from the limits store (the
        one every instance shares); a store that does not answer leaves the last values."""
        if self._limits is None:
            return
        try:
            usage = await self._limits.scope_usage(self._registry.current.policies)
        except StoreError as exc:
            log.debug("budget usage not read: %s", exc)
            return
        for u in usage:
            self._metrics.budget_spent.labels(u.workflow, u.scope, u.period).set(u.spent_usd)
            self._metrics.budget_remaining.labels(u.workflow, u.scope, u.period).set(
                u.remaining_usd
            )


async def _sliced(work: Iterator[None]) -> None:
    """Run ``work`` to its end, letting the waiting requests in whenever it has held the
    event loop for ``SLICE_S`` (at its pauses: ``yield``)."""
    began = time.perf_counter()
    for _ in work:
        if time.perf_counter() - began >= SLICE_S:
            await asyncio.sleep(0)
            began = time.perf_counter()


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
