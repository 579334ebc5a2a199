"""The ``limits`` section compiled once per policy into what each request's check reads."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.limits.cost import micro_usd
from gateway.limits.periods import Period
from gateway.limits.spec import LimitsPolicy, Per
from gateway.limits.store import Unit

__all__ = ["BudgetLimit", "LimitPlan", "RateLimit", "compile_limits"]

_MINUTE_US = 60e6
# (field, short name in keys and messages, unit, period)
_RATES = (
    ("requests_per_minute", "rpm", "requests", _MINUTE_US),
    ("requests_per_hour", "rph", "requests", 60 * _MINUTE_US),
    ("tokens_per_minute", "tpm", "tokens", _MINUTE_US),
    ("tokens_per_day", "tpd", "tokens", 1440 * _MINUTE_US),
)


@dataclass(frozen=True, slots=True)
class RateLimit:
    per: Per
    name: str  # the policy field, for messages
    metric: str  # rpm, rph, tpm, tpd: in key names
    unit: Unit
    limit: int
    period_us: float


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    per: Per
    period: Period
    micro_usd: int


@dataclass(frozen=True, slots=True)
class LimitPlan:
    rates: tuple[RateLimit, ...]
    budgets: tuple[BudgetLimit, ...]
    clamp: bool
    block_on_store_error: bool

    @property
    def needs_usage(self) -> bool:
        """Whether the real token counts matter: budgets and token rules settle on them."""
        return bool(self.budgets) or any(r.unit == "tokens" for r in self.rates)


def compile_limits(policy: LimitsPolicy) -> LimitPlan | None:
    """None when the section sets no rule: the request path then skips the step."""
    rates = tuple(
        RateLimit(rule.per, field, metric, unit, limit, period)  # type: ignore[arg-type]
        for rule in policy.rate
        for field, metric, unit, period in _RATES
        if (limit := getattr(rule, field)) is not None
    )
    budgets = tuple(
        BudgetLimit(rule.per, period, micro_usd(usd))  # type: ignore[arg-type]
        for rule in policy.budget
        for period, usd in (("day", rule.usd_per_day), ("month", rule.usd_per_month))
        if usd is not None
    )
    if not rates and not budgets:
        return None
    return LimitPlan(rates, budgets, policy.budget_clamp, policy.on_store_error == "block")
