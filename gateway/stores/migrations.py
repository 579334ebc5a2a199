"""Versioned SQL files, as the audit and review stores keep their schemas: one reader of a
package's ``NNNN_name.sql`` files and one PostgreSQL advisory lock, so both stores number,
checksum, split and serialize their migrations the same way (their runners differ in what
they record: gateway/audit/migrate.py, gateway/review/migrate.py)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["Migration", "MigrationError", "advisory_lock", "load_migrations"]


class MigrationError(Exception):
    """A store's schema cannot be brought to this release's version (the message says why)."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One file. Its comment lines may say ``-- compatible-from: N`` (the oldest release
    that still works once it is applied) and ``-- transaction: none`` (run statement by
    statement, for ``CREATE INDEX CONCURRENTLY``)."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    @property
    def compatible_from(self) -> int | None:
        found = re.search(r"^-- compatible-from: (\d+)$", self.sql, re.M)
        return int(found[1]) if found else None

    @property
    def transactional(self) -> bool:
        return "\n-- transaction: none\n" not in f"\n{self.sql}"

    def statements(self, names: Mapping[str, str]) -> list[str]:
        """The file's statements, comments dropped, each key of ``names`` replaced by its
        value (a validated schema or table prefix)."""
        lines = self.sql.splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("--"))
        for old, new in names.items():
            text = text.replace(old, new)
        return [s.strip() for s in re.split(r";\s*(?:\n|$)", text) if s.strip()]


def load_migrations(package: str) -> tuple[Migration, ...]:
    """The package's ``NNNN_name.sql`` files in order, numbered from 0001 without gaps."""
    found = []
    for entry in sorted(resources.files(package).iterdir(), key=str):
        if match := re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name):
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise MigrationError(f"{package}: migrations must be numbered 0001, 0002, ... without gaps")
    return tuple(found)


@asynccontextmanager
async def advisory_lock(db: Any, key: str) -> AsyncIterator[None]:
    """PostgreSQL's advisory lock on ``key``, held on the asyncpg connection ``db``: every
    migrator and first start of one schema, one at a time. Polled rather than waited for in
    ``pg_advisory_lock``: a waiting statement holds a snapshot, and ``CREATE INDEX
    CONCURRENTLY`` in the holder waits for every older snapshot (a deadlock)."""
    while True:
        if await db.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
            break
        await asyncio.sleep(0.1)
    try:
        yield
    finally:
        await db.execute("SELECT pg_advisory_unlock(hashtext($1))", key)
