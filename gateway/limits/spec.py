"""The policy's ``limits`` section: request and token rates, cost budgets, store failure.

Every model is frozen and rejects unknown keys, like the rest of the policy schema; the
semantic check that needs the model catalogue (a budget needs prices) is ``budget_problems``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.config import ModelConfig

__all__ = ["BudgetRule", "LimitsPolicy", "Per", "RateRule", "budget_problems"]

# Whose traffic one counter holds: the caller's subject, its gateway key, its team, each of
# its roles the workflow admits, everyone calling this workflow, or the whole gateway.
Per = Literal["user", "key", "team", "role", "workflow", "global"]
Positive = Annotated[int, Field(ge=1)]
Usd = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RateRule(_Strict):
    """Requests and tokens per period for one ``per``, each a smooth GCRA limit: the full
    amount may be used at once, and it comes back evenly over the period."""

    per: Per
    requests_per_minute: Positive | None = None
    requests_per_hour: Positive | None = None
    tokens_per_minute: Positive | None = None
    tokens_per_day: Positive | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> RateRule:
        if not any(
            (
                self.requests_per_minute,
                self.requests_per_hour,
                self.tokens_per_minute,
                self.tokens_per_day,
            )
        ):
            raise ValueError(
                "a rate rule needs requests_per_minute, requests_per_hour, tokens_per_minute "
                "or tokens_per_day"
            )
        return self


class BudgetRule(_Strict):
    """Dollars per UTC calendar day and/or month for one ``per``."""

    per: Per
    usd_per_day: Usd | None = None
    usd_per_month: Usd | None = None

    @model_validator(mode="after")
    def _some_budget(self) -> BudgetRule:
        if self.usd_per_day is None and self.usd_per_month is None:
            raise ValueError("a budget needs usd_per_day or usd_per_month")
        return self


class LimitsPolicy(_Strict):
    """``on_store_error``: what happens to requests while the shared store is unreachable.
    ``budget_clamp``: lower ``max_tokens`` to what the remaining budget pays for instead of
    refusing."""

    rate: list[RateRule] = []
    budget: list[BudgetRule] = []
    budget_clamp: bool = False
    on_store_error: Literal["block", "allow"] = "block"


def budget_problems(
    limits: LimitsPolicy | None,
    reachable: Collection[str],
    catalogue: Mapping[str, ModelConfig],
    max_output_tokens: int | None,
) -> list[tuple[tuple[str | int, ...], str]]:
    """Why a budget cannot be kept, as (location, message) pairs: a model the workflow can
    reach without a price in the catalogue would be a free pass, and without a token ceiling
    a request that sets no ``max_tokens`` has no worst case to reserve."""
    if limits is None or not limits.budget:
        return []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    unpriced = [
        m
        for m in reachable
        if (c := catalogue.get(m)) is not None
        # an embedding model writes no output: its input price is its whole price
        and (
            c.usd_per_mtok_in is None
            or (c.usd_per_mtok_out is None and c.endpoints != ["embeddings"])
        )
    ]
    if unpriced:
        problems.append(
            (
                ("limits", "budget"),
                f"limits.budget: model(s) {', '.join(unpriced)} can be reached but have no "
                "usd_per_mtok_in/usd_per_mtok_out in the model catalogue, so their cost "
                "cannot be counted",
            )
        )
    if max_output_tokens is None:
        problems.append(
            (
                ("limits", "budget"),
                "limits.budget needs access.max_output_tokens: without it a request that sets "
                "no max_tokens has no worst-case cost to reserve",
            )
        )
    return problems
