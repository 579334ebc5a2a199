"""UTC calendar periods for budgets: the id that names a period's counter, and its end."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Literal

__all__ = ["Period", "period_bounds"]

Period = Literal["day", "month"]
_KEEP_S = 86_400  # a period's counter stays readable a day after it ends (limits show)


def period_bounds(period: Period, now: float) -> tuple[str, float, int]:
    """The period holding ``now`` (epoch seconds): its id, its end, and how long its counter
    should live.

    >>> period_bounds("month", 1767225599.0)[:2]  # 2025-12-31 23:59:59 UTC
    ('202512', 1767225600.0)
    """
    ident, end = _period(period, int(now // 86_400))
    return ident, end, int(end - now) + _KEEP_S


@functools.lru_cache(maxsize=64)
def _period(period: Period, day: int) -> tuple[str, float]:
    """Per UTC day number, so the request path formats dates once a day, not per call."""
    t = datetime.fromtimestamp(day * 86_400, UTC)
    if period == "day":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        ident = start.strftime("%Y%m%d")
        end = start.timestamp() + 86_400
    else:
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        ident = start.strftime("%Y%m")
        nxt = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
        end = nxt.timestamp()
    return ident, end
