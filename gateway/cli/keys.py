"""``gateway keys create``: a new gateway API key, printed once and stored only as a hash."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.auth.keys import create_key
from gateway.cli.common import config_path
from gateway.config import load_config
from gateway.yamlsource import ConfigError

__all__ = ["register"]


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser("keys", help="manage gateway API keys")
    sub = p.add_subparsers(dest="keys_command", required=True)
    create = sub.add_parser("create", help="create a key; it is printed once")
    create.add_argument("--subject", required=True)
    create.add_argument("--roles", required=True, help="comma-separated roles")
    create.add_argument("--team")
    create.add_argument("--file", help="keys file (default: auth.api_keys_file of the config)")
    create.set_defaults(handler=run_create)


def run_create(args: argparse.Namespace) -> int:
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    if not roles:
        print("--roles needs at least one role", file=sys.stderr)
        return 2
    try:
        if args.file:
            path = Path(args.file)
        else:
            config = load_config(config_path(args))
            path = config.path(config.auth.api_keys_file)
        key, record = create_key(path, args.subject, roles, args.team)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(key)
    print(
        f"created key {record.id} for {record.subject} ({', '.join(roles)}) in {path};"
        " it is shown only once",
        file=sys.stderr,
    )
    return 0
