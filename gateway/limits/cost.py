"""Cost arithmetic, in one place: integer micro-dollars, so sums are exact.

A catalogue price is USD per million tokens, which is also micro-USD per token. The Redis
script (lua/admit.lua) repeats ``tokens_cost`` for the tokens it grants; the two are tested
to agree (tests/limits/test_same_semantics.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from gateway.config import ModelConfig

__all__ = ["micro_usd", "model_cost", "tokens_cost", "usd", "worst_prices"]


def micro_usd(dollars: float) -> int:
    """``dollars`` in micro-USD (a budget's limit)."""
    return round(dollars * 1e6)


def usd(micro: float) -> float:
    """Micro-USD back in dollars, for records, headers and reports."""
    return micro / 1e6


def tokens_cost(tokens: int, price: float) -> int:
    """Micro-USD of ``tokens`` at ``price`` (USD per million tokens), rounded up (the
    tolerance absorbs float error in ``tokens * price``)."""
    return max(0, math.ceil(tokens * price - 1e-6))


def model_cost(model: ModelConfig | None, tokens_in: int, tokens_out: int) -> int:
    """Micro-USD of one answer of ``model``; an unknown or unpriced model costs nothing."""
    if model is None:
        return 0
    return tokens_cost(tokens_in, model.usd_per_mtok_in or 0.0) + tokens_cost(
        tokens_out, model.usd_per_mtok_out or 0.0
    )


def worst_prices(models: Iterable[ModelConfig | None]) -> tuple[float, float]:
    """The highest input and output prices among ``models``: what a request that may reach
    any of them reserves at."""
    price_in = price_out = 0.0
    for model in models:
        if model is not None:
            price_in = max(price_in, model.usd_per_mtok_in or 0.0)
            price_out = max(price_out, model.usd_per_mtok_out or 0.0)
    return price_in, price_out
