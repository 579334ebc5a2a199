"""The overview's figures per workflow for a period, computed from the audit store.

Not pre-aggregated yet: the records of the period are read (newest pages first is not offered
by the store, so oldest first from the period's start) up to ``cap`` rows, and the page says
when the cap cut the period short. Rollups kept by the writer are the next step
(docs/console-and-review.md).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from gateway.audit.sink import AuditStore, Query
from gateway.policy.compile import CompiledPolicy
from gateway.review.store import ReviewStore

__all__ = ["WorkflowStats", "overview"]


@dataclass
class WorkflowStats:
    workflow: str
    requests: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    entities: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    budget_usd: float | None = None
    latencies: list[float] = field(default_factory=list)
    fallbacks: int = 0
    backlog: int = 0
    overdue: int = 0
    oldest_age_s: float = 0.0

    @property
    def p50_ms(self) -> float:
        return _quantile(self.latencies, 0.5)

    @property
    def p95_ms(self) -> float:
        return _quantile(self.latencies, 0.95)

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.requests if self.requests else 0.0


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def overview(
    audit: AuditStore,
    reviews: ReviewStore,
    policies: dict[str, CompiledPolicy],
    hours: float,
    cap: int = 20_000,
) -> tuple[list[WorkflowStats], bool]:
    """Figures per workflow for the last ``hours``; True when ``cap`` cut the period short."""
    now = time.time()
    stats: dict[str, WorkflowStats] = {}
    after: int | None = None
    read = 0
    while read < cap:
        rows = await audit.query(Query(since=now - hours * 3600, after_seq=after, limit=1000))
        for row in rows:
            record = row.record()
            if record is None or record.endpoint == "review" or record.workflow is None:
                continue
            s = stats.setdefault(record.workflow, WorkflowStats(record.workflow))
            s.requests += 1
            s.decisions[record.decision] += 1
            s.reasons.update(record.reasons)
            for side in record.entities.values():
                for action, counts in side.items():
                    for entity, n in counts.items():
                        s.entities[f"{action}:{entity}"] += n
            s.cost_usd += record.actual_usd or 0.0
            s.latencies.append(record.latency_ms)
            s.fallbacks += record.fallback is not None
        read += len(rows)
        if len(rows) < 1000:
            break
        after = rows[-1].seq
    for name, backlog in (await reviews.counts(now)).items():
        s = stats.setdefault(name, WorkflowStats(name))
        s.backlog, s.overdue = int(backlog["pending"]), int(backlog["overdue"])
        s.oldest_age_s = backlog["oldest_age_s"]
    for name, s in stats.items():
        policy = policies.get(name)
        limits = policy.source.limits if policy else None
        daily = [b.usd_per_day for b in (limits.budget if limits else []) if b.per == "workflow"]
        s.budget_usd = next((d for d in daily if d is not None), None)
    return sorted(stats.values(), key=lambda s: s.workflow), read >= cap
