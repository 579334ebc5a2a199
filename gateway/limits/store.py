"""What a limits store does: admit a request against all its rules at once, settle it later.

Both stores (memory.py, redis.py) take the same ``Ask`` and give the same ``Verdict``; one
call checks every rule and, only if all pass, updates them all, atomically. Money is in
integer micro-dollars so sums are exact; time in microseconds of the caller's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from gateway.stores import StoreError  # the one error every shared store raises

__all__ = [
    "Ask",
    "BudgetCheck",
    "BudgetUsage",
    "Excess",
    "RateCheck",
    "RateState",
    "Settlement",
    "Store",
    "StoreError",
    "Verdict",
]

Unit = Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class RateCheck:
    """One GCRA counter: ``limit`` units per ``period_us``. A request costs ``cost`` units;
    a token counter also counts the ask's input tokens and the output tokens granted."""

    key: str
    unit: Unit
    limit: int
    period_us: float
    cost: int = 0

    @property
    def tokens(self) -> bool:
        return self.unit == "tokens"

    @property
    def interval(self) -> float:
        return self.period_us / self.limit


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """One calendar period's budget: spent plus reserved may not pass ``limit`` (micro-USD);
    the key lives ``ttl_s`` (past the period's end, so usage stays readable a while)."""

    key: str
    limit: int
    ttl_s: int
    resets_at: float  # epoch seconds of the period's end, for retry-after


@dataclass(frozen=True, slots=True)
class Ask:
    """All of one request's rules. The worst-case cost is ``in_cost`` plus ``max_out``
    output tokens at ``out_price`` micro-USD each; with ``clamp`` fewer output tokens are
    granted when the budget cannot pay for all (at least ``min_out``). Token counters are
    charged ``in_tokens`` plus the output tokens granted."""

    now_us: float
    rates: tuple[RateCheck, ...]
    budgets: tuple[BudgetCheck, ...]
    in_tokens: int = 0
    in_cost: int = 0
    out_price: float = 0.0
    max_out: int = 0
    clamp: bool = False
    min_out: int = 1


@dataclass(frozen=True, slots=True)
class RateState:
    remaining: int
    reset_us: float


@dataclass(frozen=True, slots=True)
class Excess:
    """What one slot holds beyond a request's grant, when its counters span slots and an
    earlier slot reserved for more output tokens than a later slot's budget let through
    (``budget_clamp``): its settlement gives this back too."""

    tag: str  # the slot's hash tag
    reserved: int  # micro-USD on that slot's budgets
    tokens: int  # on that slot's token rules


@dataclass(frozen=True, slots=True)
class Verdict:
    """``refused_by``: the index of the refusing rate rule, or ``budget``; ``out`` the
    output tokens granted and ``reserved`` the micro-USD held for them."""

    allowed: bool
    rates: tuple[RateState, ...]
    out: int = 0
    reserved: int = 0
    refused_by: int | Literal["budget"] | None = None
    retry_us: float = 0.0
    excess: tuple[Excess, ...] = ()  # only from a store that reserves slot by slot


@dataclass(frozen=True, slots=True)
class Settlement:
    """What an admitted request really used: ``reserved`` moves to ``spent`` as ``actual``
    on each budget; token rules get back (or pay) ``token_refund`` tokens."""

    now_us: float
    budget_keys: tuple[str, ...]
    reserved: int
    actual: int
    token_rates: tuple[RateCheck, ...]
    token_refund: int
    # Set: the settlement is applied once per marker, so a call that timed out (and may or
    # may not have reached the store) can be sent again safely.
    marker: str | None = None
    excess: tuple[Excess, ...] = ()  # the Verdict's: given back per slot


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    spent: int
    reserved: int


class Store(Protocol):
    async def admit(self, ask: Ask) -> Verdict:
        """Check every rule; only if all pass, update them all. Raises StoreError."""
        ...

    async def settle(self, settlement: Settlement) -> None:
        """Release a reservation and count what was really spent. Raises StoreError."""
        ...

    async def usage(self, keys: list[str]) -> dict[str, BudgetUsage]:
        """Budget usage per key (absent keys: nothing spent)."""
        ...

    async def rate_tat(self, keys: list[str]) -> dict[str, float]:
        """The TAT of each rate key that holds one."""
        ...

    async def scan(self, pattern: str) -> list[str]:
        """Keys matching a Redis glob pattern (for ``limits show``, never on the request path)."""
        ...

    async def aclose(self) -> None: ...
