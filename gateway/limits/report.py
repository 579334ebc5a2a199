"""Current usage and what remains, per rule and counter: ``gateway limits show`` and
``GET /admin/limits`` read it from whichever store the gateway uses."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.limits.cost import usd
from gateway.limits.gcra import EPSILON_US
from gateway.limits.keys import budget_key, rate_key, slot_tag
from gateway.limits.periods import period_bounds
from gateway.limits.store import Store
from gateway.policy.compile import CompiledPolicy

__all__ = ["usage_rows"]


async def usage_rows(
    store: Store,
    prefix: str,
    policies: Mapping[str, CompiledPolicy],
    now: float,
    workflow: str | None = None,
    subject: str | None = None,
) -> list[dict[str, Any]]:
    """One row per live counter of the (filtered) workflows; a counter nobody used yet has
    no row: all of its limit remains. ``subject`` matches the counter's value (a user, key
    id, team or role)."""
    rows: list[dict[str, Any]] = []
    for name, policy in sorted(policies.items()):
        plan = policy.limits
        if plan is None or (workflow is not None and name != workflow):
            continue
        tag = slot_tag(prefix, name, plan)
        for r in plan.rates:
            base = rate_key(tag, name, r.metric, r.per, "")
            keys = await store.scan(base + (subject or "*"))
            for key, tat in (await store.rate_tat(sorted(keys))).items():
                ahead = max(0.0, tat - now * 1e6)
                interval = r.period_us / r.limit
                free = math.floor((r.period_us - ahead + EPSILON_US) / interval)
                remaining = min(r.limit, max(0, free))
                row = _row(name, r.name, r.per, key[len(base) :], r.limit, r.limit - remaining)
                rows.append(row | {"remaining": remaining, "resets_in_s": round(ahead / 1e6, 3)})
        for b in plan.budgets:
            ident, end, _ = period_bounds(b.period, now)
            base = budget_key(tag, name, b.period, ident, b.per, "")
            keys = sorted(await store.scan(base + (subject or "*")))
            for key, use in (await store.usage(keys)).items():
                limit = usd(b.micro_usd)
                row = _row(name, f"usd_per_{b.period}", b.per, key[len(base) :], limit, 0.0)
                row |= {
                    "used": usd(use.spent),
                    "reserved": usd(use.reserved),
                    "remaining": usd(b.micro_usd - use.spent - use.reserved),
                    "resets_at": datetime.fromtimestamp(end, UTC).isoformat(),
                }
                rows.append(row)
    return rows


def _row(
    workflow: str, rule: str, per: str, subject: str, limit: float, used: float
) -> dict[str, Any]:
    return {
        "workflow": workflow,
        "rule": rule,
        "per": per,
        "subject": subject,
        "limit": limit,
        "used": used,
    }
