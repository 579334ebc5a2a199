"""``gateway policy history|diff|show W``: the versions of a workflow the gateway loaded, kept
in the audit database (gateway/audit/history.py), with its promotions and rollbacks.

Versions are named by their hash or any unambiguous prefix of it (``sha256:`` optional).
Exit 0, or 1 when the workflow or a version is unknown or the history cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.audit.history import HistoryError, open_history
from gateway.cli.common import load_or_exit
from gateway.tools.history import UnknownVersion, find_version, text_diff, timeline

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    history = sub.add_parser("history", help="the versions of a workflow the gateway loaded")
    history.add_argument("workflow")
    history.add_argument("--format", choices=("text", "json"), default="text")
    history.set_defaults(handler=run_history)
    diff = sub.add_parser("diff", help="a unified diff of two versions of a workflow")
    diff.add_argument("workflow")
    diff.add_argument("old", help="a version or a prefix of it")
    diff.add_argument("new", help="a version or a prefix of it")
    diff.set_defaults(handler=run_diff)
    show = sub.add_parser("show", help="the text of one version of a workflow")
    show.add_argument("workflow")
    show.add_argument("version", help="a version or a prefix of it")
    show.set_defaults(handler=run_show)


def when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_history(args: argparse.Namespace) -> int:
    history = open_history(load_or_exit(args))
    try:
        versions = asyncio.run(history.versions(args.workflow))
        changes = asyncio.run(history.changes(args.workflow))
    except HistoryError as exc:
        print(f"policy history unavailable: {exc}", file=sys.stderr)
        return 1
    if not versions and not changes:
        print(f"no recorded version of {args.workflow}", file=sys.stderr)
        return 1
    if args.format == "json":
        out = {
            "workflow": args.workflow,
            "versions": [
                {"version": v.version, "loaded_at": v.loaded_at, "source": v.source,
                 "owner": v.owner}
                for v in versions
            ],
            "changes": [
                {"at": c.at, "action": c.action, "from": c.from_version, "to": c.to_version,
                 "by": c.by, "reason": c.reason, "detail": c.detail}
                for c in changes
            ],
        }  # fmt: skip
        sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    print(f"{'time':<20}  {'event':<8}  {'version':<23}  detail")
    for entry in timeline(versions, changes):
        print(f"{when(entry.at):<20}  {entry.what:<8}  {entry.version:<23}  {entry.detail}")
    return 0


def _two(args: argparse.Namespace, *wanted: str) -> list[Any] | None:
    history = open_history(load_or_exit(args))
    try:
        versions = asyncio.run(history.versions(args.workflow))
        return [find_version(versions, w) for w in wanted]
    except HistoryError as exc:
        print(f"policy history unavailable: {exc}", file=sys.stderr)
    except UnknownVersion as exc:
        print(f"{args.workflow}: {exc}", file=sys.stderr)
    return None


def run_diff(args: argparse.Namespace) -> int:
    found = _two(args, args.old, args.new)
    if found is None:
        return 1
    old, new = found
    diff = text_diff(old, new)
    sys.stdout.write(diff or f"{old.version} and {new.version}: the same text\n")
    return 0


def run_show(args: argparse.Namespace) -> int:
    found = _two(args, args.version)
    if found is None:
        return 1
    v = found[0]
    first = when(v.loaded_at)
    print(f"# {v.workflow} {v.version}  {v.source}  first loaded {first}  owner {v.owner}")
    sys.stdout.write(v.text if v.text.endswith("\n") else v.text + "\n")
    return 0
