"""The overview's figures per workflow for a period: from the rollups (gateway/console/rollups.py)
for the settled five-minute buckets, the open ones read from the audit store as they stand, and
the review backlog from the review store.

Drift: each behaviour signal's rate in the period (the definitions of gateway/observe/signals.py,
which the live drift scores and ``gateway report`` use) against the period of the same length
before it, as a z-score; a period with fewer than ``MIN_SAMPLES`` requests scores 0, so a quiet
workflow never shows drift. The live scores per process are in /metrics
(``gateway_drift_score``); these come from the audit trail, so they cover every instance."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.console.rollups import Rollup, Rollups
from gateway.observe.signals import RATE_SIGNALS
from gateway.policy.compile import CompiledPolicy
from gateway.review.store import ReviewStore

__all__ = ["WorkflowStats", "drifting", "overview"]


@dataclass
class WorkflowStats:
    workflow: str
    rollup: Rollup = field(default_factory=Rollup)
    budget_usd: float | None = None
    backlog: int = 0
    overdue: int = 0
    oldest_age_s: float = 0.0
    drift: list[tuple[str, float, float, float]] = field(default_factory=list)

    @property
    def p50_ms(self) -> float:
        return self.rollup.quantile_ms(0.5)

    @property
    def p95_ms(self) -> float:
        return self.rollup.quantile_ms(0.95)

    @property
    def fallback_rate(self) -> float:
        r = self.rollup
        return r.fallbacks / r.requests if r.requests else 0.0


async def overview(
    rollups: Rollups,
    reviews: ReviewStore,
    policies: Mapping[str, CompiledPolicy],
    hours: float,
    *,
    wait: bool = True,
) -> tuple[list[WorkflowStats], float, int]:
    """Figures per workflow for the last ``hours``, the time they start from, and (without
    ``wait``) how many five-minute buckets are left out, still being rolled up."""
    now = time.time()
    figures, start, behind = await rollups.period(now - hours * 3600, now, wait=wait)
    before = await rollups.period(start - hours * 3600, start, wait=wait)
    behind += before.behind
    stats = {
        name: WorkflowStats(name, rollup, drift=drifting(rollup, before.figures.get(name)))
        for name, rollup in figures.items()
    }
    for name, backlog in (await reviews.counts(now)).items():
        s = stats.setdefault(name, WorkflowStats(name))
        s.backlog, s.overdue = int(backlog["pending"]), int(backlog["overdue"])
        s.oldest_age_s = backlog["oldest_age_s"]
    for name, s in stats.items():
        policy = policies.get(name)
        limits = policy.source.limits if policy else None
        daily = [b.usd_per_day for b in (limits.budget if limits else []) if b.per == "workflow"]
        s.budget_usd = next((d for d in daily if d is not None), None)
    return sorted(stats.values(), key=lambda s: s.workflow), start, behind


MIN_SAMPLES = 100
DRIFTING = 3.0  # |z| from which a signal is shown


def drifting(now: Rollup, before: Rollup | None) -> list[tuple[str, float, float, float]]:
    """(signal, rate now, rate before, z-score) of the signals that moved by DRIFTING or more."""
    if before is None or now.signalled < MIN_SAMPLES or not before.signalled:
        return []
    out = []
    for signal in RATE_SIGNALS:
        rate = now.signals[signal] / now.signalled
        baseline = before.signals[signal] / before.signalled
        # A floor on the baseline: a signal that never fired is not infinitely surprising.
        p = min(max(baseline, 1.0 / before.signalled, 0.001), 0.999)
        z = (rate - baseline) / math.sqrt(p * (1 - p) / now.signalled)
        if abs(z) >= DRIFTING:
            out.append((signal, rate, baseline, z))
    return sorted(out, key=lambda d: -abs(d[3]))
