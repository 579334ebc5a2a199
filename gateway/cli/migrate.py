"""``gateway migrate``: bring the PostgreSQL audit schema to this release's version, under an
advisory lock (gateway/audit/migrate.py), and the review store's (SQLite or PostgreSQL,
gateway/review/migrate.py); run it before a rolling upgrade."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from gateway.audit.migrate import (
    SCHEMA_VERSION,
    MigrationError,
    incompatibility,
    migrate,
    read_state,
)
from gateway.cli.common import load_or_exit
from gateway.review.migrate import migrate_store

__all__ = ["register"]


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "migrate", help="apply the audit store's schema migrations (PostgreSQL)"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="change nothing: print the schema's version, exit 1 if this release must not "
        "serve on it",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    if not args.check and (failed := migrate_store(config)):
        return failed
    if not config.stores.audit_url:
        print(
            f"nothing to migrate: the audit trail is the SQLite file {config.audit.sqlite_path},"
            " whose schema is created when it is opened"
        )
        return 0
    return asyncio.run(_run(config.stores.audit_url, config.audit.pg_schema, args.check))


async def _run(url: str, schema: str, check: bool) -> int:
    import asyncpg  # here: every other command, serve included, starts without it

    try:
        db = await asyncpg.connect(url, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        print(f"audit store unreachable: {exc}", file=sys.stderr)
        return 1
    try:
        if check:
            state = await read_state(db, schema)
            problem = incompatibility(state)
            print(f"{schema}: version {state.version}, this release's: {SCHEMA_VERSION}")
            if problem:
                print(problem, file=sys.stderr)
            return 1 if problem else 0
        applied = await migrate(db, schema)
    except (MigrationError, asyncpg.PostgresError) as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    finally:
        await db.close()
    for m in applied:
        print(f"applied {m.version:04d}_{m.name}")
    print(f"{schema}: at version {SCHEMA_VERSION}")
    return 0
