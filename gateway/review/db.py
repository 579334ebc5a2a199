"""The two databases review state lives in, behind the same two calls (``fetch``, ``execute``),
SQL written with ``?`` placeholders; driver errors become ``StoreUnavailable``. Each brings
its schema up to date when first used (gateway/review/migrate.py)."""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.review.migrate import MigrationError, migrate_pg, migrate_sqlite

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresDb", "SqliteDb", "StoreUnavailable"]

T = TypeVar("T")


@functools.cache
def _pg_errors() -> tuple[type[BaseException], ...]:
    """What asyncpg raises for a lost connection or a failed statement: looked up only when
    a PostgreSQL call fails, so a SQLite deployment never loads asyncpg."""
    import asyncpg

    return (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class StoreUnavailable(Exception):
    """The review store could not be read or written; the driver's exception is the cause."""


class SqliteDb:
    """One connection on one thread (sqlite3 blocks), WAL with ``synchronous=FULL``; tables
    named ``prefix`` + name."""

    def __init__(self, path: Path, prefix: str = "review_") -> None:
        self._path = path
        self.prefix = prefix
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="review-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=10000")
            try:
                migrate_sqlite(conn, self.prefix)
            except MigrationError as exc:
                conn.close()
                raise StoreUnavailable(f"sqlite {self._path}: {exc}") from exc
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            try:
                return fn(self._connect())
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"sqlite {self._path}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def fetch(self, sql: str, args: list[object]) -> list[tuple[Any, ...]]:
        return await self._run(lambda c: c.execute(sql, args).fetchall())

    async def execute(self, sql: str, args: list[object]) -> int:
        return await self._run(lambda c: c.execute(sql, args).rowcount)

    async def close(self) -> None:
        def shut(_: sqlite3.Connection) -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        if self._conn is not None:
            await self._run(shut)
        self._pool.shutdown(wait=True)


_QMARK = re.compile(r"\?")


def _numbered(sql: str) -> str:
    counter = iter(range(1, 1000))
    return _QMARK.sub(lambda _: f"${next(counter)}", sql)


class PostgresDb:
    """An asyncpg pool on tables in ``schema_name``, created on first use if it is new."""

    def __init__(self, url: str, schema_name: str) -> None:
        self._url = url
        self._schema_name = schema_name
        self.prefix = f"{schema_name}."
        self._pool: asyncpg.Pool | None = None

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            import asyncpg

            pool = await asyncpg.create_pool(self._url, min_size=1, max_size=4, timeout=5)
            try:
                async with pool.acquire() as db:
                    await migrate_pg(db, self._schema_name, upgrade=False)
            except MigrationError as exc:
                await pool.close()
                raise StoreUnavailable(f"postgresql: {exc}") from exc
            self._pool = pool
        return self._pool

    async def fetch(self, sql: str, args: list[object]) -> list[tuple[Any, ...]]:
        try:
            pool = await self._get_pool()
            async with pool.acquire() as db:
                return [tuple(r) for r in await db.fetch(_numbered(sql), *args)]
        except _pg_errors() as exc:
            raise StoreUnavailable(f"postgresql: {exc}") from exc

    async def execute(self, sql: str, args: list[object]) -> int:
        try:
            pool = await self._get_pool()
            async with pool.acquire() as db:
                status: str = await db.execute(_numbered(sql), *args)
        except _pg_errors() as exc:
            raise StoreUnavailable(f"postgresql: {exc}") from exc
        # "UPDATE 1", "INSERT 0 1", "DELETE 3": the count is the last word.
        return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
