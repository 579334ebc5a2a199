"""``gateway audit list|show|export|verify|purge``: read, check and trim the audit trail of
the store gateway.yaml names (the SQLite file, or ``stores.audit_url``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.audit import AuditStore, Query, SinkError, open_store
from gateway.audit.admin import parse_time
from gateway.audit.chain import StoredRow, verify_rows
from gateway.audit.retention import purge
from gateway.boundary.service import configured_ner
from gateway.cli.common import load_or_exit
from gateway.config import GatewayConfig
from gateway.policy import load_policies
from gateway.yamlsource import ConfigError

__all__ = ["register"]

_COLUMNS = ("seq", "time", "workflow", "subject", "decision", "status", "reasons", "entities")


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser("audit", help="read and check the audit trail")
    sub = p.add_subparsers(dest="audit_command", required=True)
    listing = sub.add_parser("list", help="records matching the filters, oldest first")
    _filters(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_sync(_list))
    show = sub.add_parser("show", help="one record, by seq or request id")
    show.add_argument("id")
    show.set_defaults(handler=_sync(_show))
    export = sub.add_parser("export", help="every matching record")
    _filters(export)
    export.add_argument("--format", choices=["jsonl"], default="jsonl")
    export.set_defaults(handler=_sync(_export))
    verify = sub.add_parser("verify", help="check the hash chain; exit 1 naming a bad record")
    verify.set_defaults(handler=_sync(_verify))
    purge_cmd = sub.add_parser("purge", help="purge records past their retention.audit_days")
    purge_cmd.add_argument("--dry-run", action="store_true", help="count, change nothing")
    purge_cmd.set_defaults(handler=_sync(_purge))


def _filters(p: argparse.ArgumentParser) -> None:
    for name in ("workflow", "decision", "reason", "subject", "entity"):
        p.add_argument(f"--{name}")
    p.add_argument("--since", type=parse_time, help="epoch seconds or ISO 8601 (UTC if no zone)")
    p.add_argument("--until", type=parse_time)
    p.add_argument("--after", type=int, help="records after this seq (pagination)")
    p.add_argument("--limit", type=int, default=100)


def _query(args: argparse.Namespace, limit: int | None = None) -> Query:
    return Query(
        workflow=args.workflow,
        decision=args.decision,
        reason=args.reason,
        subject=args.subject,
        entity=args.entity,
        since=args.since,
        until=args.until,
        after_seq=args.after,
        limit=limit or args.limit,
    )


Command = Callable[[GatewayConfig, AuditStore, argparse.Namespace], Awaitable[int]]


def _sync(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        config = load_or_exit(args)
        store = open_store(config, os.environ)

        async def main() -> int:
            try:
                return await command(config, store, args)
            except SinkError as exc:
                print(f"audit store unavailable: {exc}", file=sys.stderr)
                return 2
            finally:
                await store.close()

        return asyncio.run(main())

    return run


def _json(row: StoredRow) -> dict[str, Any]:
    body = orjson.loads(row.body) if row.body is not None else {}
    return {"seq": row.seq, "hash": row.hash, **body}


async def _list(config: GatewayConfig, store: AuditStore, args: argparse.Namespace) -> int:
    rows = await store.query(_query(args))
    if args.json:
        for row in rows:
            sys.stdout.buffer.write(orjson.dumps(_json(row)) + b"\n")
        return 0
    table = [_COLUMNS]
    for row in rows:
        r = _json(row)
        entities = ",".join(
            f"{e}:{n}"
            for side in r["entities"].values()
            for c in side.values()
            for e, n in c.items()
        )
        when = datetime.fromtimestamp(r["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        table.append((str(row.seq), when, r["workflow"] or "-", r["subject"] or "-",
                      r["decision"], str(r["status"]), ",".join(r["reasons"]) or "-",
                      entities or "-"))  # fmt: skip
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return 0


async def _show(config: GatewayConfig, store: AuditStore, args: argparse.Namespace) -> int:
    row = await store.get(args.id)
    if row is None or row.body is None:
        print(f"no record {args.id}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(orjson.dumps(_json(row), option=orjson.OPT_INDENT_2) + b"\n")
    return 0


async def _export(config: GatewayConfig, store: AuditStore, args: argparse.Namespace) -> int:
    query = _query(args, limit=1000)
    while True:
        rows = await store.query(query)
        for row in rows:
            sys.stdout.buffer.write(orjson.dumps(_json(row)) + b"\n")
        if len(rows) < query.limit:
            return 0
        query = Query(**{**_fields(query), "after_seq": rows[-1].seq})


def _fields(query: Query) -> dict[str, Any]:
    return {name: getattr(query, name) for name in Query.__slots__}


async def _verify(config: GatewayConfig, store: AuditStore, args: argparse.Namespace) -> int:
    written_with = await store.key_fingerprint()
    if written_with is not None and written_with != store.chain.fingerprint():
        variable = config.audit.key_env
        if written_with == "unkeyed":
            why = f"it was written without a key, and {variable} is set now"
        elif store.chain.fingerprint() == "unkeyed":
            why = f"it was written with a key, and {variable} is not set"
        else:
            why = f"it was written with a different key than the one in {variable}"
        print(f"WRONG KEY: the chain cannot be verified: {why}; nothing was checked")
        return 2
    checkpoint = await store.checkpoint()
    report = await verify_rows(store.chain, store.rows(), checkpoint, await store.head())
    start = f" from checkpoint seq {checkpoint.seq}" if checkpoint else ""
    if report.ok:
        print(f"ok: {report.checked} record(s) verified{start}")
        return 0
    print(
        f"TAMPERED: record seq {report.seq} (request {report.request_id or '-'}): {report.problem}"
        f" ({report.checked} record(s) before it verified{start})"
    )
    return 1


async def _purge(config: GatewayConfig, store: AuditStore, args: argparse.Namespace) -> int:
    try:
        ner = configured_ner(config)  # policies naming PERSON or LOCATION need it to load
        policies = load_policies(config.path(config.policies_dir), config.models, ner)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    result = await purge(store, policies, config.audit.default_days, dry_run=args.dry_run)
    verb = "would purge" if args.dry_run else "purged"
    for workflow, n in sorted(result.purged.items()):
        label = "(no known workflow)" if workflow == "*" else workflow
        print(f"{verb} {n} record(s) of {label}")
    if not result.purged:
        print(f"{verb} nothing")
    if result.checkpoint is not None:
        cp = result.checkpoint
        print(f"checkpoint at seq {cp.seq}: {result.dropped} purged record(s) folded into it")
    return 0
