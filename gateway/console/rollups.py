"""Pre-aggregated figures for the overview: one rollup per workflow and five-minute bucket,
kept in the review store's database (its migrations make the tables), so a page reads a few
hundred small rows instead of every record of the period.

A bucket is rolled up once it has been closed for ``SETTLE_S`` (records are stamped with their
arrival time and written when the request ends: a bucket that old takes no more), when a
period first needs it: at once (``wait``), or by a background task while the page shows what
is rolled up already and says how much is not (the console's pages: a page never waits for a
long gap to be rolled up). The buckets still open are read from the audit store as they stand.
Rollups hold counts only (decisions, reason codes, entity types per action, cost, a latency
histogram), never a value, and outlive the records' purge.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from gateway.audit.record import AuditRecord, is_traffic
from gateway.audit.sink import AuditStore, Query, SinkError
from gateway.observe.signals import RATE_SIGNALS, Sample
from gateway.review.store import ReviewStore, StoreUnavailable

__all__ = ["BUCKET_S", "Period", "Rollup", "Rollups"]

log = logging.getLogger("gateway.console")

BUCKET_S = 300
SETTLE_S = 120.0
_PAGE = 1000
# A record is written when its request ends, so its seq may follow those of records that
# arrived later; a scan of a time range may start after the last seq of the buckets that
# ended this long before it (the longest request: upstream.timeout_s is at most 600 s).
_SEQ_MARGIN_S = 900
# Latency histogram: bucket k holds latencies up to 0.05 ms * 1.2**k (about 20% wide).
_BASE_MS, _GROWTH = 0.05, 1.2
_CACHED_RANGES = 8  # a few periods' worth (the overview reads two: its own and the one before)


def _latency_bucket(ms: float) -> int:
    return 0 if ms <= _BASE_MS else math.ceil(math.log(ms / _BASE_MS, _GROWTH))


@dataclass
class Rollup:
    requests: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    entities: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    fallbacks: int = 0
    latency: Counter[int] = field(default_factory=Counter)
    # A candidate's shadow verdicts: "version live_decision candidate_decision same|differs".
    candidates: Counter[str] = field(default_factory=Counter)
    # Requests per behaviour signal (gateway/observe/signals.py's definitions), and how many
    # requests were counted so (rollups made before signals were counted have none).
    signals: Counter[str] = field(default_factory=Counter)
    signalled: int = 0

    def add(self, record: AuditRecord) -> None:
        self.requests += 1
        self.decisions[record.decision] += 1
        self.reasons.update(record.reasons)
        for side in record.entities.values():
            for action, counts in side.items():
                for entity, n in counts.items():
                    self.entities[f"{action}:{entity}"] += n
        self.cost_usd += record.actual_usd or 0.0
        self.fallbacks += record.fallback is not None
        self.latency[_latency_bucket(record.latency_ms)] += 1
        sample = Sample.of(
            record.reasons, record.entities, record.fallback is not None, record.review,
            record.tokens_out, record.actual_usd, record.latency_ms / 1000,
        )  # fmt: skip
        self.signalled += 1
        hits = zip(RATE_SIGNALS, sample.hits, strict=True)
        self.signals.update(name for name, hit in hits if hit)
        if (c := record.candidate) is not None:
            differs = "differs" if c.get("differs") else "same"
            self.candidates[
                f"{c.get('version')} {record.decision} {c.get('decision')} {differs}"
            ] += 1

    def merge(self, other: Rollup) -> None:
        self.requests += other.requests
        self.decisions.update(other.decisions)
        self.reasons.update(other.reasons)
        self.entities.update(other.entities)
        self.cost_usd += other.cost_usd
        self.fallbacks += other.fallbacks
        self.latency.update(other.latency)
        self.candidates.update(other.candidates)
        self.signals.update(other.signals)
        self.signalled += other.signalled

    def quantile_ms(self, q: float) -> float:
        """The upper edge of the histogram bucket holding the ``q`` quantile (within 20%)."""
        total = sum(self.latency.values())
        if not total:
            return 0.0
        seen = 0
        for k in sorted(self.latency):
            seen += self.latency[k]
            if seen >= q * total:
                return _BASE_MS * _GROWTH**k
        return 0.0

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "requests": self.requests, "decisions": self.decisions, "reasons": self.reasons,
                "entities": self.entities, "cost_usd": self.cost_usd, "fallbacks": self.fallbacks,
                "latency": {str(k): v for k, v in self.latency.items()},
                "candidates": self.candidates, "signals": self.signals,
                "signalled": self.signalled,
            }
        ).decode()  # fmt: skip

    @classmethod
    def from_json(cls, raw: str) -> Rollup:
        data: dict[str, Any] = orjson.loads(raw)
        return cls(
            data["requests"], Counter(data["decisions"]), Counter(data["reasons"]),
            Counter(data["entities"]), data["cost_usd"], data["fallbacks"],
            Counter({int(k): v for k, v in data["latency"].items()}),
            # Rolled up before candidates and signals were counted: none.
            Counter(data.get("candidates", {})), Counter(data.get("signals", {})),
            data.get("signalled", 0),
        )  # fmt: skip


class Period(NamedTuple):
    """``behind``: settled buckets of the period not rolled up yet (left out, on their way)."""

    figures: dict[str, Rollup]
    start: float
    behind: int = 0


class Rollups:
    def __init__(self, audit: AuditStore, store: ReviewStore) -> None:
        self._audit = audit
        self._db = store.db
        self._p = store.prefix  # its tables: gateway/review/migrations/
        # Settled buckets never change once rolled up: their merged figures per range are
        # kept, so views within one five-minute bucket read only the open ones again.
        self._settled: dict[tuple[int, int], dict[str, Rollup]] = {}
        self._filling: asyncio.Task[None] | None = None

    async def period(self, since: float, until: float, *, wait: bool = True) -> Period:
        """Figures per workflow from the bucket holding ``since`` to ``until``, and the time
        they start from (the bucket's start). Without ``wait``, settled buckets not rolled up
        yet are left out (``behind`` counts them) and rolled up in the background."""
        first = int(since // BUCKET_S) * BUCKET_S
        settled = min(int((time.time() - SETTLE_S) // BUCKET_S) * BUCKET_S, int(until))
        out: dict[str, Rollup] = {}
        behind = 0
        if settled > first:
            found, behind = await self._settled_range(first, settled, wait)
            for workflow, rollup in found.items():
                out.setdefault(workflow, Rollup()).merge(rollup)
        live_since = max(first, settled)
        if live_since < until:  # an empty range would still walk the seqs after its start
            live, _ = await self._scan(live_since, until, await self._seq_before(live_since))
            for workflow, rollup in live.items():
                out.setdefault(workflow, Rollup()).merge(rollup)
        return Period(out, float(first), behind)

    async def _settled_range(
        self, first: int, settled: int, wait: bool
    ) -> tuple[dict[str, Rollup], int]:
        if (cached := self._settled.get((first, settled))) is not None:
            return cached, 0
        out: dict[str, Rollup] = {}
        done = {
            r[0]
            for r in await self._db.fetch(
                f"SELECT bucket FROM {self._p}rollup_done WHERE bucket >= ? AND bucket < ?",
                [first, settled],
            )
        }
        todo = [b for b in range(first, settled, BUCKET_S) if b not in done]
        if todo and not wait:
            if self._filling is None or self._filling.done():
                self._filling = asyncio.create_task(self._fill_all(todo), name="console-rollups")
            rows = await self._db.fetch(
                f"SELECT workflow, data FROM {self._p}rollups WHERE bucket >= ? AND bucket < ?",
                [first, settled],
            )
            for workflow, data in rows:
                out.setdefault(workflow, Rollup()).merge(Rollup.from_json(data))
            return out, len(todo)  # not cached: the rest is on its way
        for bucket in todo:
            await self._fill(bucket, await self._seq_before(bucket))
        rows = await self._db.fetch(
            f"SELECT workflow, data FROM {self._p}rollups WHERE bucket >= ? AND bucket < ?",
            [first, settled],
        )
        for workflow, data in rows:
            out.setdefault(workflow, Rollup()).merge(Rollup.from_json(data))
        if len(self._settled) >= _CACHED_RANGES:
            self._settled.pop(next(iter(self._settled)))
        self._settled[(first, settled)] = out
        return out, 0

    async def _fill_all(self, buckets: list[int]) -> None:
        """Oldest first (each scan starts past the seq the ones before it reached)."""
        try:
            for bucket in buckets:
                await self._fill(bucket, await self._seq_before(bucket))
        except (SinkError, StoreUnavailable) as exc:  # the next page view starts it again
            log.warning("console rollups stopped: %s", exc)

    async def _seq_before(self, since: float) -> int | None:
        """A seq no record of ``since`` or later precedes: where a scan may start (with the
        time filter it reads the PK index from there, not from the first record)."""
        rows = await self._db.fetch(
            f"SELECT MAX(last_seq) FROM {self._p}rollup_done WHERE bucket < ?",
            [int(since - _SEQ_MARGIN_S) // BUCKET_S * BUCKET_S - BUCKET_S],
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    async def _scan(
        self, since: float, until: float, after: int | None
    ) -> tuple[dict[str, Rollup], int | None]:
        found: dict[str, Rollup] = {}
        last = after
        while True:
            rows = await self._audit.query(
                Query(since=since, until=until, after_seq=after, limit=_PAGE)
            )
            for row in rows:
                last = row.seq
                record = row.record()
                if record is None or record.workflow is None or not is_traffic(record):
                    continue
                found.setdefault(record.workflow, Rollup()).add(record)
            if len(rows) < _PAGE:
                return found, last
            after = rows[-1].seq

    async def _fill(self, bucket: int, after: int | None) -> None:
        found, last = await self._scan(bucket, bucket + BUCKET_S, after)
        for workflow, rollup in found.items():
            await self._db.execute(
                f"INSERT INTO {self._p}rollups (bucket, workflow, data) VALUES (?, ?, ?) "
                "ON CONFLICT (bucket, workflow) DO UPDATE SET data = excluded.data",
                [bucket, workflow, rollup.to_json()],
            )
        await self._db.execute(
            f"INSERT INTO {self._p}rollup_done (bucket, last_seq) VALUES (?, ?) "
            "ON CONFLICT (bucket) DO NOTHING",
            [bucket, last],
        )
