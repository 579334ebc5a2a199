"""The overview's figures per workflow for a period: from the rollups (gateway/console/rollups.py)
for the settled five-minute buckets, the open ones read from the audit store as they stand, and
the review backlog from the review store."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.console.rollups import Rollup, Rollups
from gateway.policy.compile import CompiledPolicy
from gateway.review.store import ReviewStore

__all__ = ["WorkflowStats", "overview"]


@dataclass
class WorkflowStats:
    workflow: str
    rollup: Rollup = field(default_factory=Rollup)
    budget_usd: float | None = None
    backlog: int = 0
    overdue: int = 0
    oldest_age_s: float = 0.0

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
) -> tuple[list[WorkflowStats], float]:
    """Figures per workflow for the last ``hours``, and the time they start from."""
    now = time.time()
    figures, start = await rollups.period(now - hours * 3600, now)
    stats = {name: WorkflowStats(name, rollup) for name, rollup in figures.items()}
    for name, backlog in (await reviews.counts(now)).items():
        s = stats.setdefault(name, WorkflowStats(name))
        s.backlog, s.overdue = int(backlog["pending"]), int(backlog["overdue"])
        s.oldest_age_s = backlog["oldest_age_s"]
    for name, s in stats.items():
        policy = policies.get(name)
        limits = policy.source.limits if policy else None
        daily = [b.usd_per_day for b in (limits.budget if limits else []) if b.per == "workflow"]
        s.budget_usd = next((d for d in daily if d is not None), None)
    return sorted(stats.values(), key=lambda s: s.workflow), start
