"""Current usage and what remains, per rule and counter: ``gateway limits show`` and
``GET /admin/limits`` read it from whichever store the gateway uses."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.limits.cost import usd
from gateway.limits.gcra import EPSILON_US
from gateway.limits.keys import budget_key, counter_tag, rate_key, tag_of, tag_pattern
from gateway.limits.periods import period_bounds
from gateway.limits.store import Store
from gateway.policy.compile import CompiledPolicy

__all__ = ["ScopeUsage", "scope_usage", "usage_rows"]

# Scopes with one counter for the whole workflow (or gateway): their use is no one caller's.
_SHARED_SCOPES = ("workflow", "global")


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
        for r in plan.rates:
            base = rate_key(tag_pattern(prefix, name, r.per), name, r.metric, r.per, "")
            body = len(rate_key("", name, r.metric, r.per, ""))  # the key after its tag
            keys = await store.scan(base + (subject or "*"))
            for key, tat in (await store.rate_tat(sorted(keys))).items():
                ahead = max(0.0, tat - now * 1e6)
                interval = r.period_us / r.limit
                free = math.floor((r.period_us - ahead + EPSILON_US) / interval)
                remaining = min(r.limit, max(0, free))
                who = key[len(tag_of(key)) + body :]
                row = _row(name, r.name, r.per, who, r.limit, r.limit - remaining)
                rows.append(row | {"remaining": remaining, "resets_in_s": round(ahead / 1e6, 3)})
        for b in plan.budgets:
            ident, end, _ = period_bounds(b.period, now)
            base = budget_key(tag_pattern(prefix, name, b.per), name, b.period, ident, b.per, "")
            body = len(budget_key("", name, b.period, ident, b.per, ""))
            keys = sorted(await store.scan(base + (subject or "*")))
            for key, use in (await store.usage(keys)).items():
                limit = usd(b.micro_usd)
                who = key[len(tag_of(key)) + body :]
                row = _row(name, f"usd_per_{b.period}", b.per, who, limit, 0.0)
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


@dataclass(frozen=True, slots=True)
class ScopeUsage:
    """One workflow-wide budget this period: what was spent (settled) and what remains
    (its limit less what is spent and what admitted requests still hold)."""

    workflow: str
    scope: str  # the rule's ``per``: workflow or global, never a caller
    period: str
    spent_usd: float
    remaining_usd: float


async def scope_usage(
    store: Store, prefix: str, policies: Mapping[str, CompiledPolicy], now: float
) -> list[ScopeUsage]:
    """Each loaded workflow- or gateway-wide budget's use, in one store read (the metrics
    sampler's feed: per-caller budgets would make a series per caller)."""
    wanted: list[tuple[str, str, str, int, str]] = []
    for name, policy in sorted(policies.items()):
        plan = policy.limits
        if plan is None:
            continue
        for b in plan.budgets:
            if b.per in _SHARED_SCOPES:
                ident, _, _ = period_bounds(b.period, now)
                tag = counter_tag(prefix, name, b.per, "*")
                key = budget_key(tag, name, b.period, ident, b.per, "*")
                wanted.append((name, b.per, b.period, b.micro_usd, key))
    if not wanted:
        return []
    used = await store.usage(sorted({w[4] for w in wanted}))
    out = []
    for name, per, period, limit, key in wanted:
        use = used.get(key)
        spent, reserved = (use.spent, use.reserved) if use is not None else (0, 0)
        out.append(ScopeUsage(name, per, period, usd(spent), usd(limit - spent - reserved)))
    return out
