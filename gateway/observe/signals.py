"""The behaviour signals of a workflow, from one request each: the same definitions for the
live drift scores (gateway/observe/drift.py) and ``gateway report`` (from audit records).

Rates are shares of requests; ``output_tokens`` and ``cost_usd`` are means per request;
``latency_p95`` is the 95th percentile in seconds. ``mask_rate.<ENTITY>`` is the share of
requests where the boundary masked, redacted or tokenized that entity type.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway import errors

__all__ = ["RATE_SIGNALS", "Sample", "drift_scores", "percentile", "summarize"]

_BLOCKS = frozenset(
    {
        errors.BOUNDARY_BLOCKED.code,
        errors.BOUNDARY_BLOCKED_OUTPUT.code,
        errors.BOUNDARY_IMAGE.code,
        errors.BOUNDARY_UNREADABLE.code,
    }
)
_SCHEMA = frozenset({errors.QUALITY_SCHEMA_INVALID.code, errors.QUALITY_PATTERN_FAILED.code})
_CHANGED = frozenset({"mask", "redact", "tokenize"})

RATE_SIGNALS = (
    "block_rate",
    "refusal_rate",
    "low_confidence_rate",
    "schema_failure_rate",
    "fallback_rate",
    "review_rate",
)


@dataclass(frozen=True, slots=True)
class Sample:
    """What one request showed of its workflow's behaviour."""

    reasons: frozenset[str]
    masked: frozenset[str]  # entity types masked, redacted or tokenized
    fallback: bool
    review: bool
    tokens_out: int
    cost_usd: float
    latency_s: float

    @staticmethod
    def of(
        reasons: Iterable[str],
        entities: dict[str, dict[str, dict[str, int]]] | None,
        fallback: bool,
        review: bool,
        tokens_out: int | None,
        cost_usd: float | None,
        latency_s: float,
    ) -> Sample:
        masked = frozenset(
            entity
            for side in (entities or {}).values()
            for action, counts in side.items()
            if action in _CHANGED
            for entity in counts
        )
        return Sample(
            frozenset(reasons),
            masked,
            fallback,
            review,
            tokens_out or 0,
            cost_usd or 0.0,
            latency_s,
        )

    def rates(self) -> dict[str, bool]:
        r = self.reasons
        return {
            "block_rate": not _BLOCKS.isdisjoint(r),
            "refusal_rate": errors.QUALITY_REFUSAL.code in r,
            "low_confidence_rate": errors.QUALITY_LOW_CONFIDENCE.code in r,
            "schema_failure_rate": not _SCHEMA.isdisjoint(r),
            "fallback_rate": self.fallback,
            "review_rate": self.review,
        }


def summarize(samples: Sequence[Sample]) -> dict[str, float]:
    """Every signal over ``samples`` (empty: no signal)."""
    n = len(samples)
    if not n:
        return {}
    out = dict.fromkeys(RATE_SIGNALS, 0.0)
    entities: dict[str, int] = {}
    for s in samples:
        for name, hit in s.rates().items():
            out[name] += hit
        for entity in s.masked:
            entities[entity] = entities.get(entity, 0) + 1
    for name in RATE_SIGNALS:
        out[name] /= n
    for entity, count in entities.items():
        out[f"mask_rate.{entity}"] = count / n
    out["output_tokens"] = sum(s.tokens_out for s in samples) / n
    out["cost_usd"] = sum(s.cost_usd for s in samples) / n
    out["latency_p95"] = percentile([s.latency_s for s in samples], 0.95)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def drift_scores(
    short: Sequence[Sample], long: Sequence[Sample], min_samples: int
) -> dict[str, tuple[float, float, float]]:
    """Per signal: (short-window value, long-window baseline, drift score).

    The score is how far the short window is from the long one in standard errors (a
    z-score), 0 when the short window has fewer than ``min_samples`` requests, so quiet
    workflows never alarm. Rates: binomial; means: by the long window's spread;
    ``latency_p95``: the share of short-window requests slower than the long window's p95,
    against the 5 % expected."""
    now, base = summarize(short), summarize(long)
    n = len(short)
    out: dict[str, tuple[float, float, float]] = {}
    for signal in base.keys() | now.keys():
        out[signal] = (now.get(signal, 0.0), base.get(signal, 0.0), 0.0)
    if n < min_samples or not long:
        return out
    for signal, (value, baseline, _) in out.items():
        out[signal] = (value, baseline, _score(signal, value, baseline, short, long))
    return out


def _score(
    signal: str, value: float, baseline: float, short: Sequence[Sample], long: Sequence[Sample]
) -> float:
    n = len(short)
    if signal == "latency_p95":
        share = sum(s.latency_s > baseline for s in short) / n
        return (share - 0.05) / math.sqrt(0.05 * 0.95 / n)
    if signal in ("output_tokens", "cost_usd"):
        values = [float(s.tokens_out if signal == "output_tokens" else s.cost_usd) for s in long]
        spread = math.sqrt(sum((v - baseline) ** 2 for v in values) / len(values))
        if spread == 0:
            return 0.0 if value == baseline else math.copysign(99.0, value - baseline)
        return (value - baseline) / (spread / math.sqrt(n))
    # a floor on the baseline rate: a signal that never fired is not infinitely surprising
    p = min(max(baseline, 1.0 / len(long), 0.001), 0.999)
    return (value - baseline) / math.sqrt(p * (1 - p) / n)
