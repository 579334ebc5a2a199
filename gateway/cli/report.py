"""``gateway report [--workflow W] [--since 7d] [--format md|json]``: the workflow owner's
report from the audit trail (gateway/tools/report.py)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from typing import Any

import orjson

from gateway.audit import AuditStore, Query, SinkError, open_store
from gateway.audit.admin import parse_time
from gateway.audit.record import AuditRecord
from gateway.boundary.service import configured_ner
from gateway.cli.common import load_or_exit
from gateway.policy import load_policies
from gateway.tools.report import build_report, render_markdown
from gateway.yamlsource import ConfigError

__all__ = ["register", "since"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def since(value: str, now: float | None = None) -> float:
    """``7d``, ``24h``, ``90m`` ago, or a time (epoch seconds, ISO 8601)."""
    match = _DURATION.match(value.strip())
    if match is None:
        return parse_time(value)
    return (now or time.time()) - float(match.group(1)) * _UNITS[match.group(2)]


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "report", help="a workflow owner's report from the audit trail"
    )
    p.add_argument("--workflow", help="one workflow (default: every one with requests)")
    p.add_argument("--since", default="7d", help="7d, 24h, ... ago, or a time (default: 7d)")
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    until = time.time()
    start = since(args.since, until)
    try:
        policies = load_policies(
            config.path(config.policies_dir), config.models, configured_ner(config)
        )
    except ConfigError:
        policies = {}  # a broken policy folder must not hide the report: no budgets then
    store = open_store(config, os.environ)

    async def read() -> tuple[list[AuditRecord], list[AuditRecord]]:
        try:
            current = await _records(store, args.workflow, start, until)
            previous = await _records(store, args.workflow, start - (until - start), start)
            return current, previous
        finally:
            await store.close()

    try:
        current, previous = asyncio.run(read())
    except SinkError as exc:
        print(f"audit store unavailable: {exc}", file=sys.stderr)
        return 2
    report = build_report(
        args.workflow,
        start,
        until,
        current,
        previous,
        policies,
        config.models,
        config.observe.drift.min_samples,
    )
    if args.format == "json":
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_markdown(report))
    return 0


async def _records(
    store: AuditStore, workflow: str | None, start: float, until: float
) -> list[AuditRecord]:
    out: list[AuditRecord] = []
    after: int | None = None
    while True:
        rows = await store.query(
            Query(workflow=workflow, since=start, until=until, after_seq=after, limit=1000)
        )
        out.extend(AuditRecord.from_json(r.body) for r in rows if r.body is not None)
        if len(rows) < 1000:
            return out
        after = rows[-1].seq
