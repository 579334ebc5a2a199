"""Both sinks, real SQLite and real PostgreSQL: ordered chained writes, queries, replay
without duplicates, tamper detection naming the record, and purge leaving a checkpoint."""

from __future__ import annotations

import sqlite3
from typing import Any

import asyncpg

from gateway.audit import AuditStore, Query
from gateway.audit.chain import VerifyReport, verify_rows
from gateway.audit.postgres import PostgresSink
from gateway.audit.sqlite import SqliteSink
from tests.audit.conftest import PG_URL, record


async def verify(store: AuditStore) -> VerifyReport:
    return await verify_rows(
        store.chain, store.rows(), await store.checkpoint(), await store.head()
    )


async def tamper(store: AuditStore, sql: str, *args: Any) -> None:
    """Change the database behind the sink's back, as someone with access to it could."""
    if isinstance(store, SqliteSink):
        with sqlite3.connect(store._path) as db:
            db.execute(
                sql.replace("{t}", "audit_records").replace("$1", "?").replace("$2", "?"), args
            )
        return
    assert isinstance(store, PostgresSink)
    db = await asyncpg.connect(PG_URL)
    try:
        await db.execute(sql.replace("{t}", f"{store._schema}.records"), *args)
    finally:
        await db.close()


async def test_batches_chain_in_order_and_read_back(store: AuditStore) -> None:
    await store.write([record(1), record(2, decision="deny", reasons=["access.role_denied"])])
    await store.write([record(3, workflow="other", subject="bob")])
    rows = await store.query(Query())
    assert [r.seq for r in rows] == [1, 2, 3]
    assert [r.request_id for r in rows] == ["req000001", "req000002", "req000003"]
    assert rows[1].prev_hash == rows[0].hash and rows[2].prev_hash == rows[1].hash
    assert await verify(store) == VerifyReport(True, 3)
    shown = await store.get("req000002")
    assert shown is not None and shown.record() == record(
        2, decision="deny", reasons=["access.role_denied"]
    )
    assert (await store.get("3")) is not None and (await store.get("99")) is None


async def test_filters(store: AuditStore) -> None:
    masked = {"request": {"mask": {"EMAIL_ADDRESS": 2}}}
    await store.write([
        record(1),
        record(2, decision="deny", reasons=["access.role_denied"], subject="bob"),
        record(3, decision="masked", entities=masked, workflow="support"),
    ])  # fmt: skip

    async def ids(**filters: Any) -> list[str]:
        return [r.request_id for r in await store.query(Query(**filters))]

    assert await ids(workflow="support") == ["req000003"]
    assert await ids(decision="deny") == ["req000002"]
    assert await ids(reason="access.role_denied") == ["req000002"]
    assert await ids(reason="access") == []  # a whole code, not a prefix
    assert await ids(subject="bob") == ["req000002"]
    assert await ids(entity="EMAIL_ADDRESS") == ["req000003"]
    assert await ids(entity="%") == []  # no wildcards from the caller
    assert await ids(since=1_700_000_002.0) == ["req000002", "req000003"]
    assert await ids(until=1_700_000_002.0) == ["req000001"]
    assert await ids(after_seq=1, limit=1) == ["req000002"]


async def test_replay_skips_records_already_stored(store: AuditStore) -> None:
    await store.write([record(1), record(2)])
    await store.write([record(2), record(3)], replay=True)  # a spool replayed after a crash
    assert [r.request_id for r in await store.query(Query())] == [
        "req000001",
        "req000002",
        "req000003",
    ]
    assert (await verify(store)).ok


async def test_an_edited_record_is_named(store: AuditStore) -> None:
    await store.write([record(n) for n in range(1, 6)])
    await tamper(store, "UPDATE {t} SET subject = 'mallory' WHERE seq = 3")
    report = await verify(store)
    assert (report.ok, report.seq, report.request_id) == (False, 3, "req000003")
    assert report.problem is not None and report.problem.startswith("edited")


async def test_an_edited_body_is_named(store: AuditStore) -> None:
    await store.write([record(n) for n in range(1, 6)])
    forged = record(4, decision="allow", subject="mallory").to_json()
    await tamper(store, "UPDATE {t} SET body = $1 WHERE seq = $2", forged, 4)
    report = await verify(store)
    assert (report.ok, report.seq) == (False, 4) and report.problem is not None
    assert report.problem.startswith("edited")


async def test_a_deleted_record_is_named(store: AuditStore) -> None:
    await store.write([record(n) for n in range(1, 6)])
    await tamper(store, "DELETE FROM {t} WHERE seq = 3")
    report = await verify(store)
    assert (report.ok, report.seq) == (False, 4)
    assert report.problem == "deleted: record(s) 3 before it are missing"


async def test_deleted_records_at_the_end_are_named(store: AuditStore) -> None:
    await store.write([record(n) for n in range(1, 6)])
    await tamper(store, "DELETE FROM {t} WHERE seq >= 4")
    report = await verify(store)
    assert (report.ok, report.seq) == (False, 4)
    assert report.problem == "deleted: records 4-5 at the end are missing"


async def test_an_inserted_record_is_named(store: AuditStore) -> None:
    await store.write([record(n) for n in range(1, 6)])
    rows = await store.query(Query())
    # Make room at seq 3 and slip a record in, linked to the one before it.
    for seq in (5, 4, 3):
        await tamper(store, "UPDATE {t} SET seq = seq + 1 WHERE seq = $1", seq)
    fake = rows[2]
    await tamper(
        store,
        "INSERT INTO {t} (seq, time, workflow, request_id, decision, subject, reasons, "
        "entity_types, body, digest, prev_hash, hash) VALUES (3, $1, 'chat_app', 'forged', 'allow', "
        "'mallory', ' ', ' ', NULL, $2, $3, $4)".replace("$1", str(fake.time)).replace(
            "$2", f"'{fake.digest}'").replace("$3", f"'{rows[1].hash}'").replace("$4", f"'{'f' * 64}'"),
    )  # fmt: skip
    report = await verify(store)
    assert (report.ok, report.seq, report.request_id) == (False, 3, "forged")
    assert report.problem == "inserted: the chain skips it"


async def test_purge_then_verify_passes(store: AuditStore) -> None:
    # chat_app keeps 1 day, other 30; records of workflows no policy names follow the default.
    day, now = 86400.0, 1_700_000_000.0 + 100 * 86400
    old, recent = now - 40 * day, now - 10 * day
    await store.write([
        record(1, time=old), record(2, time=old, workflow="other"), record(3, time=recent),
        record(4, time=recent, workflow="other"), record(5, time=old, workflow="gone"),
        record(6, time=now),
    ])  # fmt: skip
    cutoffs = {"chat_app": now - 1 * day, "other": now - 30 * day}
    dry = await store.purge(cutoffs, now - 20 * day, dry_run=True, now=now)
    assert dry.purged == {"chat_app": 2, "other": 1, "*": 1} and dry.checkpoint is None
    assert len(await store.query(Query())) == 6  # a dry run changes nothing

    result = await store.purge(cutoffs, now - 20 * day, dry_run=False, now=now)
    assert result.purged == {"chat_app": 2, "other": 1, "*": 1}
    assert [r.request_id for r in await store.query(Query())] == ["req000004", "req000006"]
    # seq 1-3 were tombstones at the start of the chain: folded into a checkpoint.
    assert result.checkpoint is not None and (result.checkpoint.seq, result.dropped) == (3, 3)
    report = await verify(store)
    assert report.ok, report
    assert report.checked == 3  # 4, 5 (a tombstone, still linking the chain) and 6

    await store.write([record(7, time=now)])  # the chain goes on after a purge
    assert (await verify(store)).ok
    await tamper(
        store, "UPDATE {t} SET workflow = 'x' WHERE seq = 5"
    )  # and still guards tombstones
    assert (await verify(store)).seq == 5


async def test_a_forged_checkpoint_is_named(store: AuditStore) -> None:
    now = 1_700_000_000.0 + 100 * 86400
    await store.write([record(1), record(2, time=now)])
    await store.purge({"chat_app": now - 86400}, now, dry_run=False, now=now)
    cp = await store.checkpoint()
    assert cp is not None
    table = "audit_checkpoints" if isinstance(store, SqliteSink) else f"{store._schema}.checkpoints"  # type: ignore[attr-defined]
    if isinstance(store, SqliteSink):
        with sqlite3.connect(store._path) as db:
            db.execute(f"UPDATE {table} SET purged = 0")
    else:
        db = await asyncpg.connect(PG_URL)
        await db.execute(f"UPDATE {table} SET purged = 0")
        await db.close()
    report = await verify(store)
    assert not report.ok and report.problem == "checkpoint signature is wrong"
