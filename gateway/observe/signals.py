"""The behaviour signals of a workflow, from one request each: the same definitions for the
live drift scores (gateway/observe/drift.py) and ``gateway report`` (from audit records).

Rates are shares of requests; ``output_tokens`` and ``cost_usd`` are means per request;
``latency_p95`` is the 95th percentile in seconds. ``mask_rate.<ENTITY>`` is the share of
requests where the boundary masked, redacted or tokenized that entity type.

A ``Window`` keeps running sums as samples come and go, so reading every signal costs a pass
over the signals, not over the requests; ``latency_p95`` selects from a heap of the window's
latencies (sorting 5,000 held the event loop 0.4-0.5 ms, the heap 0.15 ms: branch ``holds``).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from heapq import heapify, heappop
from itertools import islice
from operator import itemgetter, mul, neg
from typing import NamedTuple, cast

from gateway import errors

__all__ = ["RATE_SIGNALS", "Sample", "Window", "drift_scores", "percentile"]

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

_NONE: tuple[str, ...] = ()
RATE_SIGNALS = (
    "block_rate",
    "refusal_rate",
    "low_confidence_rate",
    "schema_failure_rate",
    "fallback_rate",
    "review_rate",
)
_NO_HITS = (False,) * len(RATE_SIGNALS)


class Sample(NamedTuple):
    """What one request showed of its workflow's behaviour; ``hits`` in RATE_SIGNALS order.
    A named tuple: made for every request, in a third of a frozen dataclass's time."""

    hits: tuple[bool, ...]
    masked: tuple[str, ...]  # entity types masked, redacted or tokenized: sorted, each once
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
        masked = _NONE
        if entities:
            masked = tuple(
                sorted(
                    {
                        entity
                        for side in entities.values()
                        for action, counts in side.items()
                        if action in _CHANGED
                        for entity in counts
                    }
                )
            )
        hits = _NO_HITS
        if reasons or fallback or review:  # most requests: none, so no set is built
            r = frozenset(reasons)
            hits = (
                not _BLOCKS.isdisjoint(r),
                errors.QUALITY_REFUSAL.code in r,
                errors.QUALITY_LOW_CONFIDENCE.code in r,
                not _SCHEMA.isdisjoint(r),
                fallback,
                review,
            )
            if not any(hits):
                hits = _NO_HITS
        return Sample(hits, masked, tokens_out or 0, cost_usd or 0.0, latency_s)


_HITS, _MASKED, _TOKENS, _COST, _LATENCY = (itemgetter(i) for i in range(5))

# A sample as a window keeps it: a plain tuple of atoms (``masked`` a tuple of strings, not a
# frozenset), which the cyclic GC stops tracking at its first collection; a named tuple it
# tracks for good, and the windows' thousands of samples were most of what every
# generation-1 and full collection scanned (0.2-0.6 and 1.4 ms: branch ``holds``).
_Row = tuple[tuple[bool, ...], tuple[str, ...], int, float, float]


def _rows(samples: Iterable[Sample]) -> list[_Row]:
    return cast(list[_Row], list(map(tuple, samples)))


class Window:
    """The last ``size`` samples (all of them: None) with running sums."""

    def __init__(self, size: int | None = None, samples: Iterable[Sample] = ()) -> None:
        self.samples: deque[_Row] = deque(maxlen=size)
        # The samples' latencies, negated (heapq's heap is a min-heap: the slowest first).
        self._negated: deque[float] = deque(maxlen=size)
        self.hits = [0] * len(RATE_SIGNALS)
        self.masked: dict[str, int] = {}
        self.tokens = self.tokens_sq = self.cost = self.cost_sq = 0.0
        for s in samples:
            self.add(s)

    def __len__(self) -> int:
        return len(self.samples)

    def add(self, sample: Sample) -> None:
        if self.samples.maxlen is not None and len(self.samples) == self.samples.maxlen:
            self._count(self.samples[0], -1)
        row = cast(_Row, tuple(sample))
        self.samples.append(row)
        self._negated.append(-sample.latency_s)
        self._count(row, 1)

    def extend(self, samples: Sequence[Sample]) -> None:
        """``add`` each of ``samples``, each running sum moved once for them all."""
        maxlen = self.samples.maxlen
        if maxlen is not None:
            samples = samples[-maxlen:]
            if (gone := len(self.samples) + len(samples) - maxlen) > 0:
                self._sum(list(islice(self.samples, gone)), -1)
        rows = _rows(samples)
        self.samples.extend(rows)
        self._negated.extend(map(neg, map(_LATENCY, rows)))
        self._sum(rows, 1)

    def slower(self, seconds: float) -> int:
        """How many samples took longer than ``seconds``."""
        return sum(1 for negated in self._negated if negated < -seconds)

    def _sum(self, samples: Sequence[_Row], sign: int) -> None:
        tokens = list(map(_TOKENS, samples))
        cost = list(map(_COST, samples))
        self.tokens += sign * sum(tokens)
        self.tokens_sq += sign * sum(map(mul, tokens, tokens))
        self.cost += sign * sum(cost)
        self.cost_sq += sign * sum(map(mul, cost, cost))
        for hits, n in Counter(map(_HITS, samples)).items():  # a few distinct ones
            for i, hit in enumerate(hits):
                if hit:
                    self.hits[i] += sign * n
        for masked, n in Counter(map(_MASKED, samples)).items():
            for entity in masked:
                self.masked[entity] = self.masked.get(entity, 0) + sign * n

    def _count(self, row: _Row, sign: int) -> None:
        hits, masked, tokens, cost, _ = row
        if hits is not _NO_HITS:
            for i, hit in enumerate(hits):
                if hit:
                    self.hits[i] += sign
        for entity in masked:
            self.masked[entity] = self.masked.get(entity, 0) + sign
        self.tokens += sign * tokens
        self.tokens_sq += sign * tokens * tokens
        self.cost += sign * cost
        self.cost_sq += sign * cost * cost

    def summary(self) -> dict[str, float]:
        """Every signal over the window (empty: no signal)."""
        n = len(self.samples)
        if not n:
            return {}
        out = {name: hits / n for name, hits in zip(RATE_SIGNALS, self.hits, strict=True)}
        for entity, count in self.masked.items():
            if count:
                out[f"mask_rate.{entity}"] = count / n
        out["output_tokens"] = self.tokens / n
        out["cost_usd"] = self.cost / n
        out["latency_p95"] = self._slowest(n - _rank(n, 0.95))
        return out

    def _slowest(self, k: int) -> float:
        """The ``k``-th slowest latency: ``k`` pops of a heap, not a sort of the window."""
        heap = list(self._negated)
        heapify(heap)
        for _ in range(k - 1):
            heappop(heap)
        return -heap[0]

    def spread(self, signal: str) -> float:
        """The standard deviation of a mean signal over the window."""
        n = len(self.samples)
        total, squares = (
            (self.tokens, self.tokens_sq)
            if signal == "output_tokens"
            else (self.cost, self.cost_sq)
        )
        mean = total / n
        return math.sqrt(max(squares / n - mean * mean, 0.0))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[_rank(len(ordered), q)]


def _rank(n: int, q: float) -> int:
    """The index of the ``q`` quantile of ``n`` sorted values (nearest rank)."""
    return min(n - 1, math.ceil(q * n) - 1)


def drift_scores(
    short: Window, long: Window, min_samples: int
) -> dict[str, tuple[float, float, float]]:
    """Per signal: (short-window value, long-window baseline, drift score).

    The score is how far the short window is from the long one in standard errors (a
    z-score), 0 when the short window has fewer than ``min_samples`` requests, so quiet
    workflows never alarm. Rates: binomial; means: by the long window's spread;
    ``latency_p95``: the share of short-window requests slower than the long window's p95,
    against the 5 % expected."""
    now, base = short.summary(), long.summary()
    out = {s: (now.get(s, 0.0), base.get(s, 0.0), 0.0) for s in base.keys() | now.keys()}
    n = len(short)
    if n < min_samples or not len(long):
        return out
    for signal, (value, baseline, _) in out.items():
        if signal == "latency_p95":
            share = short.slower(baseline) / n
            score = (share - 0.05) / math.sqrt(0.05 * 0.95 / n)
        elif signal in ("output_tokens", "cost_usd"):
            spread = long.spread(signal)
            if spread == 0:
                score = 0.0 if value == baseline else math.copysign(99.0, value - baseline)
            else:
                score = (value - baseline) / (spread / math.sqrt(n))
        else:
            # a floor on the baseline rate: a signal that never fired is not infinitely
            # surprising
            p = min(max(baseline, 1.0 / len(long), 0.001), 0.999)
            score = (value - baseline) / math.sqrt(p * (1 - p) / n)
        out[signal] = (value, baseline, score)
    return out
