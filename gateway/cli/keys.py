"""``gateway keys create|list|revoke``: gateway API keys, printed once and stored only hashed.

A running gateway sees new and revoked keys within a second, without a restart.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.auth.keys import create_key, read_keys, revoke_key
from gateway.cli.common import config_path
from gateway.config import load_config
from gateway.yamlsource import ConfigError

__all__ = ["parse_duration", "register"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w``.

    >>> parse_duration("30d")
    datetime.timedelta(days=30)
    """
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration like 90s, 15m, 12h, 30d, 2w")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser("keys", help="manage gateway API keys")
    sub = p.add_subparsers(dest="keys_command", required=True)
    file_help = "keys file (default: auth.api_keys_file of the config)"
    create = sub.add_parser("create", help="create a key; it is printed once")
    create.add_argument("--subject", required=True)
    create.add_argument("--roles", required=True, help="comma-separated roles")
    create.add_argument("--team")
    create.add_argument("--expires-in", type=parse_duration, help="e.g. 30d; default: never")
    create.add_argument("--file", help=file_help)
    create.set_defaults(handler=run_create)
    listing = sub.add_parser("list", help="list keys (ids, owners, status; never the keys)")
    listing.add_argument("--file", help=file_help)
    listing.set_defaults(handler=run_list)
    revoke = sub.add_parser("revoke", help="revoke a key by id; honoured within a second")
    revoke.add_argument("id")
    revoke.add_argument("--file", help=file_help)
    revoke.set_defaults(handler=run_revoke)


def _keys_file(args: argparse.Namespace) -> Path:
    if args.file:
        return Path(args.file)
    config = load_config(config_path(args))
    return config.path(config.auth.api_keys_file)


def run_create(args: argparse.Namespace) -> int:
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    if not roles:
        print("--roles needs at least one role", file=sys.stderr)
        return 2
    expires = (
        datetime.now(UTC).replace(microsecond=0) + args.expires_in if args.expires_in else None
    )
    try:
        path = _keys_file(args)
        key, record = create_key(path, args.subject, roles, args.team, expires)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(key)
    until = f", expires {record.expires_at.isoformat()}" if record.expires_at else ""
    print(
        f"created key {record.id} for {record.subject} ({', '.join(roles)}){until} in {path};"
        " it is shown only once",
        file=sys.stderr,
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    try:
        records = read_keys(_keys_file(args))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    rows = [("ID", "SUBJECT", "ROLES", "TEAM", "CREATED", "EXPIRES", "STATUS")]
    rows += [
        (
            r.id,
            r.subject,
            ",".join(r.roles),
            r.team or "-",
            r.created_at,
            r.expires_at.isoformat() if r.expires_at else "never",
            r.status(now),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    try:
        path = _keys_file(args)
        record = revoke_key(path, args.id)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyError:
        print(f"no key with id '{args.id}' in {path}", file=sys.stderr)
        return 1
    assert record.revoked_at is not None
    print(f"revoked key {record.id} ({record.subject}) at {record.revoked_at.isoformat()}")
    return 0
