"""Policy history in the audit database: every version loaded, every promotion and rollback,
every evaluation run (docs/policy-lifecycle.md).

The tables live beside the audit records, in the SQLite file or the PostgreSQL schema, so one
backup keeps the trail and the versions it names. PostgreSQL gets them from migrations 0004
and 0005 (``gateway migrate``); SQLite runs the same files' statements when it opens, as it
does its own schema. These writes are rare (a reload, a promotion, an eval run), so each
operation opens its own connection: nothing is held between them.

A version is recorded once per (workflow, version): the first time it is seen wins, so
reloading a folder, restarting, or ten instances loading the same file store one row.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from gateway.audit.migrate import MIGRATIONS, migrate
from gateway.config import GatewayConfig
from gateway.policy.reload import PolicyVersion, Recorder

__all__ = [
    "EvalRun",
    "HistoryError",
    "HistoryStore",
    "PolicyChange",
    "PolicyVersion",
    "loaded_recorder",
    "open_history",
]

log = logging.getLogger("gateway.policy")

_TABLES = ("0004", "0005")  # the migrations that make these tables


class HistoryError(Exception):
    """The history could not be read or written; the driver's exception is the cause."""


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """A promotion or a rollback: ``to_version`` made live in place of ``from_version``."""

    workflow: str
    at: float
    action: str  # promote | rollback
    from_version: str | None
    to_version: str
    by: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)  # the gates and what they found


@dataclass(frozen=True, slots=True)
class EvalRun:
    """One run of a workflow's evaluation set; ``failing`` names the cases that failed."""

    workflow: str
    at: float
    version: str
    candidate: bool
    model: str  # the --model override, or "" for each case's own model
    offline: bool
    set_digest: str  # the set file's SHA-256: runs compare only on the same set
    metric: str
    value: float
    target: float
    passed: int
    failed: int
    failing: tuple[str, ...] = ()


class HistoryStore(Protocol):
    async def record_versions(self, versions: Sequence[PolicyVersion]) -> int:
        """Store the versions not stored yet; how many were new."""
        ...

    async def versions(self, workflow: str) -> list[PolicyVersion]:
        """Every stored version of ``workflow``, oldest first."""
        ...

    async def record_change(self, change: PolicyChange) -> None: ...

    async def changes(self, workflow: str) -> list[PolicyChange]:
        """Promotions and rollbacks of ``workflow``, oldest first."""
        ...

    async def record_eval(self, run: EvalRun) -> None: ...

    async def eval_runs(self, workflow: str, limit: int = 20) -> list[EvalRun]:
        """The latest runs of ``workflow``, newest first."""
        ...


def open_history(config: GatewayConfig) -> HistoryStore:
    """The history beside the configured audit trail: PostgreSQL with ``stores.audit_url``,
    else the SQLite file ``audit.sqlite_path``."""
    if config.stores.audit_url:
        return PostgresHistory(config.stores.audit_url, config.audit.pg_schema)
    return SqliteHistory(config.path(config.audit.sqlite_path))


def loaded_recorder(history: HistoryStore) -> Recorder:
    """The reloader's hook: record what was loaded, and log (never raise) when the history
    cannot be written: serving the new policies matters more than remembering them, and the
    next load records them again."""

    async def record(versions: Sequence[PolicyVersion]) -> None:
        try:
            new = await history.record_versions(versions)
        except HistoryError as exc:
            log.error("policy history not recorded: %s", exc)
            return
        if new:
            log.info("policy history: %d new version(s) recorded", new)

    return record


_VERSION_COLUMNS = "workflow, version, loaded_at, source, owner, text"
_CHANGE_COLUMNS = "workflow, at, action, from_version, to_version, by_name, reason, detail"
_EVAL_COLUMNS = (
    "workflow, at, version, candidate, model, offline, set_digest, metric, value, target, "
    "passed, failed, failing"
)


def _version(row: Sequence[Any]) -> PolicyVersion:
    return PolicyVersion(row[0], row[1], row[5], row[3], row[4], float(row[2]))


def _change(row: Sequence[Any]) -> PolicyChange:
    return PolicyChange(
        row[0], float(row[1]), row[2], row[3], row[4], row[5], row[6], orjson.loads(row[7])
    )


def _change_values(c: PolicyChange) -> tuple[object, ...]:
    detail = orjson.dumps(c.detail, option=orjson.OPT_SORT_KEYS).decode()
    return (c.workflow, c.at, c.action, c.from_version, c.to_version, c.by, c.reason, detail)


def _eval(row: Sequence[Any]) -> EvalRun:
    return EvalRun(
        row[0], float(row[1]), row[2], bool(row[3]), row[4], bool(row[5]), row[6], row[7],
        float(row[8]), float(row[9]), int(row[10]), int(row[11]), tuple(orjson.loads(row[12])),
    )  # fmt: skip


def _eval_values(r: EvalRun) -> tuple[object, ...]:
    return (
        r.workflow, r.at, r.version, r.candidate, r.model, r.offline, r.set_digest, r.metric,
        r.value, r.target, r.passed, r.failed, orjson.dumps(list(r.failing)).decode(),
    )  # fmt: skip


def _sqlite_schema() -> list[str]:
    """Migrations 0004 and 0005 as SQLite statements (tables prefixed ``audit_``)."""
    out: list[str] = []
    for m in MIGRATIONS:
        if f"{m.version:04d}" in _TABLES:
            out += m.statements({"{schema}.": "audit_", "{schema}_": "audit_"})
    return out


class SqliteHistory:
    """The history in the audit SQLite file (WAL: the gateway's writes go on meanwhile)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def _run(self, sql: str, rows: Sequence[Sequence[object]], write: bool) -> list[Any]:
        """``write``: run ``sql`` once per row in one transaction, answering how many rows
        changed; else run it once with ``rows[0]`` and answer the rows read."""

        def call() -> list[Any]:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None)
            try:
                db.execute("PRAGMA busy_timeout=10000")
                db.execute("PRAGMA journal_mode=WAL")
                for statement in _sqlite_schema():
                    db.execute(statement)
                if not write:
                    return db.execute(sql, rows[0]).fetchall()
                db.execute("BEGIN IMMEDIATE")
                before = db.total_changes
                db.executemany(sql, rows)
                db.execute("COMMIT")
                return [(db.total_changes - before,)]
            finally:
                db.close()

        try:
            return await asyncio.to_thread(call)
        except (sqlite3.Error, OSError) as exc:
            raise HistoryError(f"sqlite {self._path}: {exc}") from exc

    async def record_versions(self, versions: Sequence[PolicyVersion]) -> int:
        if not versions:
            return 0
        rows = [(v.workflow, v.version, v.loaded_at, v.source, v.owner, v.text) for v in versions]
        sql = (
            f"INSERT INTO audit_policy_versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (workflow, version) DO NOTHING"
        )
        return int((await self._run(sql, rows, write=True))[0][0])

    async def versions(self, workflow: str) -> list[PolicyVersion]:
        sql = (
            f"SELECT {_VERSION_COLUMNS} FROM audit_policy_versions WHERE workflow = ? "
            "ORDER BY loaded_at, version"
        )
        return [_version(r) for r in await self._run(sql, [(workflow,)], write=False)]

    async def record_change(self, change: PolicyChange) -> None:
        sql = f"INSERT INTO audit_policy_changes ({_CHANGE_COLUMNS}) VALUES ({','.join('?' * 8)})"
        await self._run(sql, [_change_values(change)], write=True)

    async def changes(self, workflow: str) -> list[PolicyChange]:
        sql = f"SELECT {_CHANGE_COLUMNS} FROM audit_policy_changes WHERE workflow = ? ORDER BY at"
        return [_change(r) for r in await self._run(sql, [(workflow,)], write=False)]

    async def record_eval(self, run: EvalRun) -> None:
        sql = f"INSERT INTO audit_eval_runs ({_EVAL_COLUMNS}) VALUES ({','.join('?' * 13)})"
        await self._run(sql, [_eval_values(run)], write=True)

    async def eval_runs(self, workflow: str, limit: int = 20) -> list[EvalRun]:
        sql = (
            f"SELECT {_EVAL_COLUMNS} FROM audit_eval_runs WHERE workflow = ? "
            "ORDER BY at DESC LIMIT ?"
        )
        return [_eval(r) for r in await self._run(sql, [(workflow, limit)], write=False)]


class PostgresHistory:
    """The history in the audit schema; an empty schema is created whole, as the sink does,
    and an older one needs ``gateway migrate`` (the error says so)."""

    def __init__(self, url: str, schema: str) -> None:
        self._url = url
        self._schema = schema

    async def _with(self, work: Any) -> Any:
        import asyncpg  # only with PostgreSQL: a SQLite deployment never loads it

        failures = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
        try:
            db = await asyncpg.connect(self._url, timeout=5)
        except failures as exc:
            raise HistoryError(f"postgresql unreachable: {exc}") from exc
        try:
            await migrate(db, self._schema, fresh_only=True)
            return await work(db)
        except asyncpg.UndefinedTableError as exc:
            raise HistoryError(
                f"postgresql: {exc}: the audit schema predates the policy history, "
                "run `gateway migrate`"
            ) from exc
        except failures as exc:
            raise HistoryError(f"postgresql: {exc}") from exc
        finally:
            await db.close()

    async def record_versions(self, versions: Sequence[PolicyVersion]) -> int:
        if not versions:
            return 0
        s = self._schema

        async def work(db: Any) -> int:
            new = 0
            async with db.transaction():
                for v in versions:
                    done = await db.fetchval(
                        f"INSERT INTO {s}.policy_versions ({_VERSION_COLUMNS}) "
                        "VALUES ($1, $2, $3, $4, $5, $6) "
                        "ON CONFLICT (workflow, version) DO NOTHING RETURNING 1",
                        v.workflow, v.version, v.loaded_at, v.source, v.owner, v.text,
                    )  # fmt: skip
                    new += 1 if done else 0
            return new

        result: int = await self._with(work)
        return result

    async def versions(self, workflow: str) -> list[PolicyVersion]:
        sql = (
            f"SELECT {_VERSION_COLUMNS} FROM {self._schema}.policy_versions WHERE workflow = $1 "
            "ORDER BY loaded_at, version"
        )
        rows = await self._with(lambda db: db.fetch(sql, workflow))
        return [_version(r) for r in rows]

    async def record_change(self, change: PolicyChange) -> None:
        sql = (
            f"INSERT INTO {self._schema}.policy_changes ({_CHANGE_COLUMNS}) "
            f"VALUES ({','.join(f'${i}' for i in range(1, 9))})"
        )
        await self._with(lambda db: db.execute(sql, *_change_values(change)))

    async def changes(self, workflow: str) -> list[PolicyChange]:
        sql = (
            f"SELECT {_CHANGE_COLUMNS} FROM {self._schema}.policy_changes WHERE workflow = $1 "
            "ORDER BY at"
        )
        return [_change(r) for r in await self._with(lambda db: db.fetch(sql, workflow))]

    async def record_eval(self, run: EvalRun) -> None:
        sql = (
            f"INSERT INTO {self._schema}.eval_runs ({_EVAL_COLUMNS}) "
            f"VALUES ({','.join(f'${i}' for i in range(1, 14))})"
        )
        await self._with(lambda db: db.execute(sql, *_eval_values(run)))

    async def eval_runs(self, workflow: str, limit: int = 20) -> list[EvalRun]:
        sql = (
            f"SELECT {_EVAL_COLUMNS} FROM {self._schema}.eval_runs WHERE workflow = $1 "
            "ORDER BY at DESC LIMIT $2"
        )
        return [_eval(r) for r in await self._with(lambda db: db.fetch(sql, workflow, limit))]
