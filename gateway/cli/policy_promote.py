"""``gateway policy promote W`` and ``gateway policy rollback W``: change which version of a
workflow is live, by writing the policies folder (gateway/tools/promote.py, changes.py).

Exit 0 when the change is made; 1 when a gate refuses it (the gate is named) or the version
asked for is unknown; 2 when it cannot be checked or recorded (then nothing changed).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import time
from typing import Any

from gateway.audit import SinkError
from gateway.audit.history import HistoryError, HistoryStore, open_history
from gateway.boundary.service import configured_ner
from gateway.cli.common import load_or_exit
from gateway.cli.policy_replay import since
from gateway.config import GatewayConfig
from gateway.policy.loader import load_policies
from gateway.tools.changes import StaleCandidate, promote, rollback, rollback_target
from gateway.tools.history import UnknownVersion
from gateway.tools.promote import Checked, check_gates
from gateway.yamlsource import ConfigError

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("promote", help="make W.candidate.yaml live once every gate passes")
    p.add_argument("workflow")
    p.add_argument(
        "--accept-changes",
        action="store_true",
        help="accept the decisions the replay of recorded traffic shows changing",
    )
    p.add_argument(
        "--since", type=since, default=None, help="the replay and canary window (default 7d)"
    )
    p.add_argument(
        "--offline", action="store_true", help="run the evaluation gate on recorded answers"
    )
    _who(p)
    p.set_defaults(handler=run_promote)
    r = sub.add_parser("rollback", help="make an earlier version of W live again")
    r.add_argument("workflow")
    r.add_argument("--to", help="the version (or a prefix); default: the one before the live one")
    _who(r)
    r.set_defaults(handler=run_rollback)


def _who(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reason", default="", help="why: kept in the history")
    p.add_argument("--by", help="who (default: the login name)")


def _by(args: argparse.Namespace) -> str:
    return str(args.by or os.environ.get("GATEWAY_USER") or getpass.getuser())


def _print_gates(checked: Checked) -> None:
    for gate in checked.gates:
        print(f"{'pass' if gate.passed else 'REFUSED':<8} {gate.name:<12} {gate.summary}")
        for line in gate.lines:
            print(f"{'':<22}{line}")


def run_promote(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    history = open_history(config)
    window = args.since if args.since is not None else time.time() - 7 * 86400
    try:
        return asyncio.run(_promote(config, history, args, window))
    except (HistoryError, SinkError) as exc:
        print(f"nothing changed: the promotion cannot be recorded: {exc}", file=sys.stderr)
        return 2


async def _promote(
    config: GatewayConfig, history: HistoryStore, args: argparse.Namespace, window: float
) -> int:
    await history.versions(args.workflow)  # unrecordable: refuse before running any gate
    checked = await check_gates(
        config, args.workflow, history, configured_ner(config),
        since=window, accept_changes=args.accept_changes, offline=args.offline,
    )  # fmt: skip
    _print_gates(checked)
    refused = checked.refused
    if refused is not None:
        print(f"promotion of {args.workflow} refused by the {refused.name} gate", file=sys.stderr)
        return 1
    try:
        done = await promote(config, checked, history, by=_by(args), reason=args.reason)
    except StaleCandidate as exc:
        print(f"nothing changed: {exc}", file=sys.stderr)
        return 1
    print(
        f"promoted {done.workflow}: {done.from_version} -> {done.to_version} "
        f"(previous kept in {done.archived})"
    )
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    directory = config.path(config.policies_dir)
    ner = configured_ner(config)
    try:
        live = load_policies(directory, config.models, ner).get(args.workflow)
    except ConfigError as exc:
        print(f"the policies folder does not load:\n{exc}", file=sys.stderr)
        return 2
    if live is None:
        print(f"no live policy {args.workflow}", file=sys.stderr)
        return 1
    history = open_history(config)

    async def go() -> int:
        target = await rollback_target(directory, live, history, args.to)
        done = await rollback(config, live, target, history, ner, by=_by(args), reason=args.reason)
        print(
            f"rolled back {done.workflow}: {done.from_version} -> {done.to_version} "
            f"(previous kept in {done.archived})"
        )
        return 0

    try:
        return asyncio.run(go())
    except UnknownVersion as exc:
        print(f"{args.workflow}: {exc}", file=sys.stderr)
        return 1
    except StaleCandidate as exc:
        print(f"nothing changed: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"nothing changed: that version no longer loads:\n{exc}", file=sys.stderr)
        return 1
    except (HistoryError, SinkError) as exc:
        print(f"nothing changed: the rollback cannot be recorded: {exc}", file=sys.stderr)
        return 2
