"""``gateway policy replay --candidate DIR``: what candidate policies would have changed in
recorded traffic, workflow by workflow (gateway/tools/replay.py says what can be re-decided)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.audit import AuditRecord, Query, SinkError, open_store
from gateway.audit.admin import parse_time
from gateway.boundary.service import configured_ner
from gateway.cli.common import load_or_exit
from gateway.config import GatewayConfig
from gateway.policy import CompiledPolicy, load_policies
from gateway.policy.candidates import load_candidates
from gateway.tools.replay import WorkflowReport, replay
from gateway.yamlsource import ConfigError

__all__ = ["add_replay"]

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def since(value: str) -> float:
    """``7d``, ``12h``, ``30m`` ago, or epoch seconds / ISO 8601."""
    match = _AGO.match(value)
    if match:
        return time.time() - float(match.group(1)) * _UNIT[match.group(2)]
    return parse_time(value)


def add_replay(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "replay", help="re-decide recorded traffic under candidate policies"
    )
    p.add_argument(
        "--candidate",
        required=True,
        help="folder of candidate policies: W.yaml files, or W.candidate.yaml next to them",
    )
    p.add_argument("--since", type=since, help="7d, 12h, 30m, epoch seconds or ISO 8601")
    p.add_argument("--workflow", help="only this workflow")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    ner = configured_ner(config)
    try:
        live = load_policies(config.path(config.policies_dir), config.models, ner)
    except ConfigError as exc:
        print(f"live policies unreadable, entity counts cannot be trusted:\n{exc}", file=sys.stderr)
        live = {}
    try:
        candidates = _candidates(Path(args.candidate), live, config, ner)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in the candidates", file=sys.stderr)
        return 1
    if args.workflow:
        candidates = {n: c for n, c in candidates.items() if n == args.workflow}
    if not candidates:
        print("no candidate policies to replay", file=sys.stderr)
        return 1
    try:
        reports = asyncio.run(_replay(config, candidates, live, args))
    except SinkError as exc:
        print(f"audit store unavailable: {exc}", file=sys.stderr)
        return 2
    for name, candidate in candidates.items():
        reports.setdefault(name, WorkflowReport(name, candidate.version))
    ordered = [reports[n] for n in sorted(reports)]
    if args.format == "json":
        out = {"since": args.since, "workflows": [r.as_json() for r in ordered]}
        sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        for report in ordered:
            _print(report)
    return 0


def _candidates(
    directory: Path, live: Mapping[str, CompiledPolicy], config: GatewayConfig, ner: Any
) -> dict[str, CompiledPolicy]:
    found = load_policies(directory, config.models, ner)
    found.update(load_candidates(directory, {**live, **found}, config.models, ner))
    return found


async def _replay(
    config: GatewayConfig,
    candidates: Mapping[str, CompiledPolicy],
    live: Mapping[str, CompiledPolicy],
    args: argparse.Namespace,
) -> dict[str, WorkflowReport]:
    store = open_store(config, os.environ)
    records: list[AuditRecord] = []
    try:
        query = Query(workflow=args.workflow, since=args.since, limit=1000)
        while True:
            rows = await store.query(query)
            records += [r for row in rows if (r := row.record()) is not None]
            if len(rows) < query.limit:
                break
            query = Query(
                workflow=args.workflow, since=args.since, after_seq=rows[-1].seq, limit=1000
            )
    finally:
        await store.close()
    return replay(records, candidates, live)


def _print(report: WorkflowReport) -> None:
    c = report.counts
    print(
        f"{report.workflow}  candidate {report.candidate_version}: {report.records} records; "
        f"newly blocked {c['newly_blocked']}, newly allowed {c['newly_allowed']}, "
        f"action changes {c['action_change']}, undecidable {c['undecidable']}, same {c['same']}"
    )
    for note in report.notes:
        print(f"  note: {note}")
    for r in report.changed:
        when = datetime.fromtimestamp(r.time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(
            f"  {r.change:<13} {when}  {r.request_id}  {r.subject or '-'}  "
            f"{r.live} -> {r.candidate}  {r.detail}"
        )
