"""Review state: one row per item, its delivery attempts, and the console's sessions.

SQLite (a file, one thread) by default, PostgreSQL when the audit trail uses it; both run the
same SQL through a two-method adapter (``_Db``), written with ``?`` placeholders. Every change
of state is one conditional ``UPDATE`` (claim only a pending item nobody holds, decide only
an item one holds), so two reviewers, or two gateway instances, never both win. The tables
are made by the store's migrations (gateway/review/migrate.py).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from gateway.config import GatewayConfig
from gateway.review.db import PostgresDb, SqliteDb, StoreUnavailable

__all__ = ["Delivery", "Item", "ReviewStore", "StoreUnavailable", "open_review_store"]

Kind = Literal["flag", "request", "answer"]
State = Literal["pending", "approved", "rejected"]


@dataclass(slots=True)
class Item:
    """One review. ``request``: the request body as reviewers may see it (masked); ``answer``:
    for a held answer, the body the app gets if it is approved (``shown``: as reviewers see
    it); ``result``: the answer delivered after the decision, in the API's shape."""

    id: str
    workflow: str
    request_id: str
    created: float
    kind: Kind
    trigger: str
    reason: str
    subject: str
    roles: list[str]
    team: str | None
    api: str
    model: str
    policy_version: str
    assign_to: list[str]
    sla_at: float
    webhook: str | None = None
    webhook_secret_env: str | None = None
    message: str | None = None  # the fallback message, for a rejection
    request: dict[str, Any] | None = None
    answer: str | None = None
    shown: str | None = None
    state: State = "pending"
    claimed_by: str | None = None
    claimed_until: float = 0.0
    decided_by: str | None = None
    decided_at: float | None = None
    verdict: str | None = None  # approved | edited | rejected
    note: str | None = None
    result: str | None = None
    result_status: int | None = None
    deliveries: list[Delivery] = field(default_factory=list)

    def claimed(self, now: float) -> bool:
        return self.state == "pending" and self.claimed_by is not None and self.claimed_until > now

    def overdue(self, now: float) -> bool:
        """Past its SLA and nobody holds it."""
        return self.state == "pending" and not self.claimed(now) and now > self.sla_at


@dataclass(frozen=True, slots=True)
class Delivery:
    attempt: int
    at: float
    status: int | None
    error: str | None


_FIXED = ("workflow", "request_id", "kind", "trigger", "reason", "subject", "roles", "team",
          "api", "model", "policy_version", "assign_to", "webhook", "webhook_secret_env",
          "message", "request", "answer", "shown")  # fmt: skip
_COLS = ("id, created, sla_at, workflow, data, state, claimed_by, claimed_until, decided_by, "
         "decided_at, verdict, note, result, result_status")  # fmt: skip


class _Db(Protocol):
    prefix: str  # the tables' prefix: ``review_`` in SQLite, ``schema.`` in PostgreSQL

    async def fetch(self, sql: str, args: list[object]) -> list[tuple[Any, ...]]: ...

    async def execute(self, sql: str, args: list[object]) -> int: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    subject: str
    roles: frozenset[str]
    csrf: str
    expires: float


class ReviewStore:
    """Items, deliveries and console sessions on one database; raises StoreUnavailable."""

    def __init__(self, db: _Db) -> None:
        self._db = self.db = db  # ``db``/``prefix``: for the console's rollups, same database
        self._p = self.prefix = db.prefix

    async def close(self) -> None:
        await self._db.close()

    async def add(self, item: Item) -> None:
        data = orjson.dumps({k: getattr(item, k) for k in _FIXED}).decode()
        await self._db.execute(
            f"INSERT INTO {self._p}items (id, created, sla_at, workflow, data, state, "
            "claimed_until) VALUES (?, ?, ?, ?, ?, 'pending', 0)",
            [item.id, item.created, item.sla_at, item.workflow, data],
        )

    async def get(self, id_: str) -> Item | None:
        rows = await self._db.fetch(f"SELECT {_COLS} FROM {self._p}items WHERE id = ?", [id_])
        if not rows:
            return None
        item = _item(rows[0])
        deliveries = await self._db.fetch(
            f"SELECT attempt, at, status, error FROM {self._p}deliveries WHERE item = ? "
            "ORDER BY attempt",
            [id_],
        )
        item.deliveries = [Delivery(*d) for d in deliveries]
        return item

    async def list(
        self,
        *,
        state: str | None = "pending",
        workflow: str | None = None,
        after: tuple[float, str] | None = None,
        limit: int = 100,
    ) -> list[Item]:
        """Oldest first; ``after``: the (created, id) of the last item of the previous page."""
        clauses: list[str] = ["1 = 1"]
        args: list[object] = []
        if state is not None:
            clauses.append("state = ?")
            args.append(state)
        if workflow is not None:
            clauses.append("workflow = ?")
            args.append(workflow)
        if after is not None:
            clauses.append("(created > ? OR (created = ? AND id > ?))")
            args += [after[0], after[0], after[1]]
        args.append(limit)
        rows = await self._db.fetch(
            f"SELECT {_COLS} FROM {self._p}items WHERE {' AND '.join(clauses)} "
            "ORDER BY created, id LIMIT ?",
            args,
        )
        return [_item(r) for r in rows]

    async def claim(self, id_: str, reviewer: str, until: float, now: float) -> bool:
        """Take a pending item nobody holds (or whose claim expired, or that one holds)."""
        return (
            await self._db.execute(
                f"UPDATE {self._p}items SET claimed_by = ?, claimed_until = ? WHERE id = ? "
                "AND state = 'pending' "
                "AND (claimed_by IS NULL OR claimed_until <= ? OR claimed_by = ?)",
                [reviewer, until, id_, now, reviewer],
            )
            == 1
        )

    async def decide(
        self,
        id_: str,
        reviewer: str,
        verdict: str,
        note: str | None,
        result: str | None,
        result_status: int | None,
        now: float,
        lease: float | None = None,
    ) -> bool:
        """Record the decision on an item ``reviewer`` holds; False if they hold it no more.
        ``lease``: its webhook delivery is due, held by this process until then."""
        state = "rejected" if verdict == "rejected" else "approved"
        return (
            await self._db.execute(
                f"UPDATE {self._p}items SET state = ?, decided_by = ?, decided_at = ?, "
                "verdict = ?, note = ?, result = ?, result_status = ?, webhook_lease = ? "
                "WHERE id = ? AND state = 'pending' AND claimed_by = ? AND claimed_until > ?",
                [
                    state,
                    reviewer,
                    now,
                    verdict,
                    note,
                    result,
                    result_status,
                    lease,
                    id_,
                    reviewer,
                    now,
                ],
            )
            == 1
        )

    async def due_deliveries(self) -> builtins.list[tuple[str, float]]:  # ``list``: a method
        """(item, lease) of every decision whose webhook delivery is still due."""
        rows = await self._db.fetch(
            f"SELECT id, webhook_lease FROM {self._p}items WHERE webhook_lease IS NOT NULL", []
        )
        return [(r[0], r[1]) for r in rows]

    async def swap_lease(self, id_: str, held: float, lease: float | None) -> bool:
        """Compare-and-set a delivery's lease: take a lapsed one, renew or release one's own,
        or end it (None: nothing due). False: another process holds it now."""
        return (
            await self._db.execute(
                f"UPDATE {self._p}items SET webhook_lease = ? WHERE id = ? AND webhook_lease = ?",
                [lease, id_, held],
            )
            == 1
        )

    async def delivered(self, id_: str, delivery: Delivery) -> None:
        await self._db.execute(
            f"INSERT INTO {self._p}deliveries (item, attempt, at, status, error) "
            "VALUES (?, ?, ?, ?, ?)",
            [id_, delivery.attempt, delivery.at, delivery.status, delivery.error],
        )

    async def counts(self, now: float) -> dict[str, dict[str, float]]:
        """Per workflow: pending items, those past their SLA, and the oldest's age (s)."""
        rows = await self._db.fetch(
            f"SELECT workflow, COUNT(*), SUM(CASE WHEN sla_at < ? THEN 1 ELSE 0 END), "
            f"MIN(created) FROM {self._p}items WHERE state = 'pending' GROUP BY workflow",
            [now],
        )
        return {
            r[0]: {"pending": r[1], "overdue": r[2] or 0, "oldest_age_s": now - r[3]} for r in rows
        }

    async def new_session(self, session: Session) -> None:
        await self._db.execute(
            f"INSERT INTO {self._p}sessions (id, subject, roles, csrf, expires) "
            "VALUES (?, ?, ?, ?, ?)",
            [session.id, session.subject, " ".join(sorted(session.roles)), session.csrf,
             session.expires],
        )  # fmt: skip

    async def session(self, id_: str, now: float) -> Session | None:
        rows = await self._db.fetch(
            f"SELECT id, subject, roles, csrf, expires FROM {self._p}sessions "
            "WHERE id = ? AND expires > ?",
            [id_, now],
        )
        if not rows:
            return None
        r = rows[0]
        return Session(r[0], r[1], frozenset(r[2].split()), r[3], r[4])

    async def end_session(self, id_: str) -> None:
        now = time.time()
        await self._db.execute(
            f"DELETE FROM {self._p}sessions WHERE id = ? OR expires <= ?", [id_, now]
        )


def _item(row: tuple[Any, ...]) -> Item:
    (id_, created, sla_at, _, data, state, claimed_by, claimed_until, decided_by, decided_at,
     verdict, note, result, result_status) = row  # fmt: skip
    fixed: Mapping[str, Any] = orjson.loads(data)
    return Item(
        id=id_, created=created, sla_at=sla_at, state=state, claimed_by=claimed_by,
        claimed_until=claimed_until, decided_by=decided_by, decided_at=decided_at,
        verdict=verdict, note=note, result=result, result_status=result_status, **fixed,
    )  # fmt: skip


def open_review_store(config: GatewayConfig) -> ReviewStore:
    """PostgreSQL when the audit trail uses it (``stores.audit_url``), else SQLite."""
    review = config.review
    if config.stores.audit_url:
        return ReviewStore(PostgresDb(config.stores.audit_url, review.pg_schema))
    path: Path = config.path(review.sqlite_path)
    return ReviewStore(SqliteDb(path))
