"""The SQL both sinks share: the query filters, in either placeholder style, and SQLite's
schema (PostgreSQL's is versioned: gateway/audit/migrations/).

``{p}`` is the table prefix: ``audit_`` in SQLite, ``schema.`` in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.audit.sink import Query

__all__ = ["COLUMNS", "TOMBSTONE", "schema", "select_rows", "where"]

COLUMNS = (
    "seq, time, workflow, request_id, decision, subject, reasons, entity_types, body, digest, "
    "prev_hash, hash"
)

# A purged record keeps only what the chain needs (seq, time, workflow, digest, hashes): who
# asked and what was decided go with its body.
TOMBSTONE = (
    "body = NULL, subject = NULL, request_id = '', decision = '', reasons = ' ', entity_types = ' '"
)


def schema(p: str, blob: str) -> list[str]:
    """SQLite's tables. ``seq INTEGER PRIMARY KEY`` is the rowid itself: files made before it
    kept ``BIGINT PRIMARY KEY``, a separate index that each commit wrote a page of."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {p}records (
            seq INTEGER PRIMARY KEY,
            time DOUBLE PRECISION NOT NULL,
            workflow TEXT,
            request_id TEXT NOT NULL,
            decision TEXT NOT NULL,
            subject TEXT,
            reasons TEXT NOT NULL,
            entity_types TEXT NOT NULL,
            body {blob},
            digest TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL)""",
        f"CREATE INDEX IF NOT EXISTS {p.replace('.', '_')}records_time ON {p}records (time)",
        f"CREATE INDEX IF NOT EXISTS {p.replace('.', '_')}records_rid ON {p}records (request_id)",
        # PostgreSQL's migration 0002 (gateway/audit/migrations/): purges and workflow filters.
        f"CREATE INDEX IF NOT EXISTS {p.replace('.', '_')}records_workflow_time "
        f"ON {p}records (workflow, time)",
        # PostgreSQL's 0003: a workflow's records in seq order (the explorer's filtered pages).
        f"CREATE INDEX IF NOT EXISTS {p.replace('.', '_')}records_workflow_seq "
        f"ON {p}records (workflow, seq)",
        f"""CREATE TABLE IF NOT EXISTS {p}head (
            id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {p}checkpoints (
            seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
            purged BIGINT NOT NULL, signature TEXT NOT NULL)""",
    ]


def where(query: Query, ph: Callable[[int], str]) -> tuple[str, list[object]]:
    """The WHERE clause of ``query`` with placeholders ``ph(1)``, ``ph(2)``, ..."""
    clauses: list[str] = ["body IS NOT NULL"]
    args: list[object] = []

    def add(sql: str, value: object) -> None:
        args.append(value)
        clauses.append(sql.replace("?", ph(len(args))))

    if query.workflow is not None:
        add("workflow = ?", query.workflow)
    if query.decision is not None:
        add("decision = ?", query.decision)
    if query.subject is not None:
        add("subject = ?", query.subject)
    if query.reason is not None:
        add("reasons LIKE ?", f"% {_like(query.reason)} %")
    if query.entity is not None:
        add("entity_types LIKE ?", f"% {_like(query.entity)} %")
    if query.since is not None:
        add("time >= ?", query.since)
    if query.until is not None:
        add("time < ?", query.until)
    if query.after_seq is not None:
        add("seq > ?", query.after_seq)
    return " AND ".join(clauses), args


def _like(value: str) -> str:
    # Codes and entity names are [a-z._] / [A-Z_]; anything else cannot match and must not
    # act as a wildcard.
    return "".join(c for c in value if c.isalnum() or c in "_.-")


def select_rows(p: str, query: Query, ph: Callable[[int], str]) -> tuple[str, list[object]]:
    clause, args = where(query, ph)
    args.append(query.limit)
    return (
        f"SELECT {COLUMNS} FROM {p}records WHERE {clause} ORDER BY seq LIMIT {ph(len(args))}",
        args,
    )
