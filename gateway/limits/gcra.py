"""GCRA, the generic cell rate algorithm, as plain arithmetic on microseconds.

A counter is one number, the theoretical arrival time (TAT): when the counter would be back
to empty if nothing more came. ``limit`` units per ``period`` means each unit pushes the TAT
``period / limit`` further; a request fits while the TAT stays within one ``period`` of now.
So a full burst of ``limit`` is allowed at once, and capacity returns evenly after it; no
fixed window, so no double burst across a window edge.

The Lua script (lua/admit.lua) does the same sums; tests run both stores on the same cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["EPSILON_US", "Gcra", "refund", "step"]

# Float sums of ``interval`` drift by far less than this; without it the ``limit``-th unit of a
# burst arriving in the same microsecond could be refused.
EPSILON_US = 1.0


@dataclass(frozen=True, slots=True)
class Gcra:
    """The outcome of asking for ``cost`` units at ``now``: ``tat`` is the new TAT (or the old
    one when refused); ``retry_us`` how long until the ask would fit (0 when it fits)."""

    allowed: bool
    tat: float
    remaining: int
    reset_us: float
    retry_us: float


def step(tat: float | None, now: float, interval: float, period: float, cost: int) -> Gcra:
    """Ask for ``cost`` units; ``interval`` is ``period / limit``."""
    base = now if tat is None or tat < now else tat
    new = base + cost * interval
    if new - now <= period + EPSILON_US:
        return Gcra(True, new, _remaining(new, now, interval, period), new - now, 0.0)
    # An ask larger than the whole limit never fits: wait a full period, then ask for less.
    retry = period if cost * interval > period + EPSILON_US else new - period - now
    return Gcra(False, base, _remaining(base, now, interval, period), base - now, retry)


def refund(tat: float | None, now: float, interval: float, units: int) -> float | None:
    """Give back (or, negative, take) ``units``: the TAT moves, never before now."""
    base = now if tat is None or tat < now else tat
    moved = base - units * interval
    return moved if moved > now else None


def _remaining(tat: float, now: float, interval: float, period: float) -> int:
    return max(0, math.floor((period - (tat - now) + EPSILON_US) / interval))
