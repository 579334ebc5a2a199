"""Whether a canary crossed a threshold of its ``abort_on``: judged on the window's totals of
both sides, never on noise.

A threshold alone would fire on noise: with 50 requests a side and a 10 % error rate, the
difference of two identical arms exceeds 5 points one time in five. So a signal is crossed
only when the window's **evidence** says the candidate exceeds the allowed amount, in a
one-sided test at z >= 4 (a false alarm rate of 3 in 100,000 per judgement *at the threshold
itself*, far less for a candidate no worse than live):

- rates: the candidate's rate minus live's, less the threshold, in standard errors of the
  difference (Agresti-Caffo: one success and one failure added to each side, so a rate of 0
  still has a spread);
- ``latency_p95``: the share of the candidate's requests surely slower than ``ratio`` times
  live's p95 (their bucket starts above it), against the 5 % a candidate whose p95 were
  exactly there would show;
- ``cost_per_request``: the candidate's mean minus ``ratio`` times live's, in standard errors
  (Welch).

Both sides need ``min_requests`` in the window before anything is judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.rollout.signals import LATENCY_EDGES, Counts
from gateway.rollout.spec import AbortOn

__all__ = ["Crossing", "Z", "judge", "p95"]

Z = 4.0  # one-sided, about 3 in 100,000

# abort_on field -> the counter its rate is read from
RATES = {
    "error_rate": "errors",
    "refusal_rate": "refusals",
    "fallback_rate": "fallbacks",
    "block_rate": "blocks",
    "review_rate": "reviews",
}


@dataclass(frozen=True, slots=True)
class Crossing:
    """The signal that crossed, both sides' values, the limit and the test's z."""

    signal: str
    candidate: float
    live: float
    limit: float
    z: float
    requests: tuple[int, int]  # (candidate, live) in the window

    def as_dict(self) -> dict[str, object]:
        return {
            "signal": self.signal,
            "candidate": round(self.candidate, 6),
            "live": round(self.live, 6),
            "limit": round(self.limit, 6),
            "z": round(self.z, 2),
            "requests": {"candidate": self.requests[0], "live": self.requests[1]},
        }


def p95(counts: Counts) -> float:
    """The upper edge of the latency bucket holding the 95th percentile (0: no samples)."""
    buckets = sorted(
        (int(name[1:]), n) for name, n in counts.items() if name.startswith("l") and n > 0
    )
    total = sum(n for _, n in buckets)
    if not total:
        return 0.0
    rank, seen = math.ceil(0.95 * total), 0.0
    for index, n in buckets:
        seen += n
        if seen >= rank:
            return LATENCY_EDGES[min(index, len(LATENCY_EDGES) - 1)]
    return LATENCY_EDGES[-1]


def judge(abort_on: AbortOn, candidate: Counts, live: Counts) -> Crossing | None:
    """The first threshold crossed (in ``AbortOn``'s order), or None."""
    n_c, n_l = int(candidate.get("requests", 0)), int(live.get("requests", 0))
    if n_c < abort_on.min_requests or n_l < abort_on.min_requests:
        return None
    sizes = (n_c, n_l)
    for signal, counter in RATES.items():
        limit = getattr(abort_on, signal)
        if limit is None:
            continue
        x_c, x_l = candidate.get(counter, 0.0), live.get(counter, 0.0)
        rate_c, rate_l = x_c / n_c, x_l / n_l
        if rate_c - rate_l <= limit:
            continue
        adj_c, adj_l = (x_c + 1) / (n_c + 2), (x_l + 1) / (n_l + 2)
        se = math.sqrt(adj_c * (1 - adj_c) / (n_c + 2) + adj_l * (1 - adj_l) / (n_l + 2))
        z = (rate_c - rate_l - limit) / se
        if z >= Z:
            return Crossing(signal, rate_c, rate_l, limit, z, sizes)
    if abort_on.latency_p95 is not None and (
        crossed := _latency(abort_on.latency_p95, candidate, live, sizes)
    ):
        return crossed
    if abort_on.cost_per_request is not None:
        return _cost(abort_on.cost_per_request, candidate, live, sizes)
    return None


def _latency(
    ratio: float, candidate: Counts, live: Counts, sizes: tuple[int, int]
) -> Crossing | None:
    base = p95(live)
    if base <= 0:
        return None
    limit = ratio * base
    n_c = sizes[0]
    # samples whose bucket's lower edge (the previous bucket's upper edge) is at or above limit
    slower = sum(
        n
        for name, n in candidate.items()
        if name.startswith("l") and (i := int(name[1:])) > 0 and LATENCY_EDGES[i - 1] >= limit
    )
    share = slower / n_c
    if share <= 0.05:
        return None
    z = (share - 0.05) / math.sqrt(0.05 * 0.95 / n_c)
    if z < Z:
        return None
    return Crossing("latency_p95", p95(candidate), base, limit, z, sizes)


def _cost(ratio: float, candidate: Counts, live: Counts, sizes: tuple[int, int]) -> Crossing | None:
    n_c, n_l = sizes
    mean_c, mean_l = candidate.get("cost", 0.0) / n_c, live.get("cost", 0.0) / n_l
    limit = ratio * mean_l
    if mean_c <= limit:
        return None
    var_c = max(candidate.get("cost_sq", 0.0) / n_c - mean_c**2, 0.0)
    var_l = max(live.get("cost_sq", 0.0) / n_l - mean_l**2, 0.0)
    se = math.sqrt(var_c / n_c + ratio**2 * var_l / n_l)
    z = math.inf if se == 0 else (mean_c - limit) / se
    if z < Z:
        return None
    return Crossing("cost_per_request", mean_c, mean_l, limit, min(z, 99.0), sizes)
