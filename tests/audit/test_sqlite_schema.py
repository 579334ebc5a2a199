"""The SQLite file's schema: new files key records by the rowid; files made before keep their
tables (``CREATE ... IF NOT EXISTS``) and the sink appends to them as before."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from gateway.audit.chain import Chain
from gateway.audit.sql import schema
from gateway.audit.sqlite import SqliteSink
from tests.audit.conftest import record
from tests.support.chain import verified

KEY = b"sqlite-schema-chain-key-0123456789abcdef"


def _indexes(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_records'"
        )
        return {r[0] for r in rows}


def _append_and_verify(db: Path) -> None:
    async def run() -> None:
        sink = SqliteSink(db, Chain(KEY))
        await sink.write([record(0)])
        await sink.write([record(1), record(2)])
        report = await verified(sink)
        assert report.ok and report.checked == 3, report
        assert await sink.head() == (3, (await sink.get("3")).hash)  # type: ignore[union-attr]
        await sink.close()

    asyncio.run(run())


def test_a_new_file_keys_records_by_the_rowid(tmp_path: Path) -> None:
    """``seq BIGINT PRIMARY KEY`` is not SQLite's rowid: a separate index, one more page per
    commit to write and sync."""
    db = tmp_path / "audit.db"
    _append_and_verify(db)
    assert not any(name.startswith("sqlite_autoindex") for name in _indexes(db))


def test_a_file_made_before_keeps_its_table_and_takes_appends(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        for statement in schema("audit_", "BLOB"):
            conn.execute(statement.replace("seq INTEGER PRIMARY KEY", "seq BIGINT PRIMARY KEY"))
    assert "sqlite_autoindex_audit_records_1" in _indexes(db)
    _append_and_verify(db)
    assert "sqlite_autoindex_audit_records_1" in _indexes(db)
