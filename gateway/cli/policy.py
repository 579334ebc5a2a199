"""``gateway policy validate``: every problem of every policy file, at file:line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.boundary.service import configured_ner
from gateway.cli.common import load_or_exit
from gateway.cli.policy_replay import add_replay
from gateway.policy import load_policies
from gateway.yamlsource import ConfigError

__all__ = ["register"]


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser("policy", help="work with policies")
    sub = p.add_subparsers(dest="policy_command", required=True)
    validate = sub.add_parser("validate", help="validate policies; exit 1 on any problem")
    validate.add_argument("dir", nargs="?", help="policies folder (default: policies_dir)")
    validate.set_defaults(handler=run_validate)
    add_replay(sub)


def run_validate(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    directory = Path(args.dir) if args.dir else config.path(config.policies_dir)
    try:
        policies = load_policies(directory, config.models, configured_ner(config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    for name, p in sorted(policies.items()):
        print(f"ok  {name:<24} {p.version}  {p.path}")
    return 0
