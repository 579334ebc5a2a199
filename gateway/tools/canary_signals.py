"""A canary's observed signals against live's, from the audit records of a window: each record
names the policy version that decided it, so the candidate's requests and live's are told
apart without any state of the canary's own.

The signals follow ``rollout.abort_on`` (gateway/rollout/spec.py): rates are shares of
requests (error: an ``error`` decision; refusal, block, fallback and review as the drift
signals of gateway/observe/signals.py count them), compared as the increase over live's in
rate points; ``latency_p95`` and ``cost_per_request`` are compared as the ratio to live's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.audit.record import AuditRecord
from gateway.observe.signals import RATE_SIGNALS, Sample, percentile
from gateway.rollout.spec import AbortOn

__all__ = ["Breach", "Signals", "breaches", "signals_of"]

_RATES = ("error_rate", "refusal_rate", "fallback_rate", "block_rate", "review_rate")
_RATIOS = ("latency_p95", "cost_per_request")


@dataclass(frozen=True, slots=True)
class Signals:
    """One version's signals over its records in the window."""

    requests: int
    values: dict[str, float]


def signals_of(records: Iterable[AuditRecord]) -> Signals:
    rows = list(records)
    n = len(rows)
    if not n:
        return Signals(0, {})
    hits = [0] * len(RATE_SIGNALS)
    errors = 0
    cost = 0.0
    for r in rows:
        sample = Sample.of(
            r.reasons, r.entities, r.fallback is not None or r.fallback_used, r.review,
            r.tokens_out, r.actual_usd, r.latency_ms / 1000,
        )  # fmt: skip
        hits = [h + int(s) for h, s in zip(hits, sample.hits, strict=True)]
        errors += r.decision == "error"
        cost += sample.cost_usd
    shares = {name: h / n for name, h in zip(RATE_SIGNALS, hits, strict=True)}
    return Signals(
        n,
        {
            "error_rate": errors / n,
            "refusal_rate": shares["refusal_rate"],
            "fallback_rate": shares["fallback_rate"],
            "block_rate": shares["block_rate"],
            "review_rate": shares["review_rate"],
            "latency_p95": percentile([r.latency_ms for r in rows], 0.95),
            "cost_per_request": cost / n,
        },
    )


@dataclass(frozen=True, slots=True)
class Breach:
    signal: str
    candidate: float
    live: float
    limit: float

    def __str__(self) -> str:
        if self.signal in _RATIOS:
            return (
                f"{self.signal}: candidate {self.candidate:.4g} vs live {self.live:.4g}, "
                f"more than {self.limit}x"
            )
        return (
            f"{self.signal}: candidate {self.candidate:.3f} vs live {self.live:.3f}, "
            f"more than {self.limit:.3f} above"
        )


def breaches(candidate: Signals, live: Signals, abort_on: AbortOn) -> list[Breach]:
    """Every threshold of ``abort_on`` the candidate is over (the caller checks the samples
    are big enough first)."""
    out: list[Breach] = []
    for name in _RATES:
        limit = getattr(abort_on, name)
        c, lv = candidate.values.get(name, 0.0), live.values.get(name, 0.0)
        if limit is not None and c - lv > limit:
            out.append(Breach(name, c, lv, limit))
    for name in _RATIOS:
        limit = getattr(abort_on, name)
        c, lv = candidate.values.get(name, 0.0), live.values.get(name, 0.0)
        # live at zero: any candidate value above it is an unbounded ratio
        if limit is not None and c > 0 and (lv == 0 or c / lv > limit):
            out.append(Breach(name, c, lv, limit))
    return out
