"""``gateway limits show``: current usage and what remains, per rule and counter.

With ``stores.redis_url`` the counters are read from Redis directly; a memory store lives in
the serving process, so ``--url`` asks that gateway (``GET /admin/limits``, with the admin
key in ``GATEWAY_ADMIN_KEY``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import urllib.parse
import urllib.request
from typing import Any
from urllib.error import HTTPError, URLError

import orjson

from gateway.boundary.service import configured_ner
from gateway.cli.common import load_or_exit
from gateway.limits.redis import RedisStore
from gateway.limits.report import usage_rows
from gateway.limits.store import StoreError
from gateway.policy import load_policies
from gateway.stores.shared import shared_redis
from gateway.yamlsource import ConfigError

__all__ = ["register"]

_COLUMNS = ("workflow", "rule", "per", "subject", "limit", "used", "reserved", "remaining")


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser("limits", help="rate limits and budgets")
    sub = p.add_subparsers(dest="limits_command", required=True)
    show = sub.add_parser("show", help="current usage and what remains")
    show.add_argument("--workflow")
    show.add_argument("--subject", help="a user, key id, team or role")
    show.add_argument("--url", help="ask this running gateway (memory store)")
    show.add_argument("--json", action="store_true", help="one JSON object per line")
    show.set_defaults(handler=run_show)


def run_show(args: argparse.Namespace) -> int:
    try:
        rows = _from_gateway(args) if args.url else _from_redis(args)
    except (StoreError, OSError, HTTPError, URLError) as exc:
        print(f"limits: cannot read usage: {exc}", file=sys.stderr)
        return 1
    if rows is None:
        return 2
    if args.json:
        for row in rows:
            print(orjson.dumps(row).decode())
        return 0
    print("  ".join(f"{c:<14}" for c in (*_COLUMNS, "resets")))
    for row in rows:
        resets = row.get("resets_at") or f"in {row.get('resets_in_s', 0)}s"
        cells = [_cell(row.get(c, "")) for c in _COLUMNS]
        print("  ".join(f"{c:<14}" for c in (*cells, resets)))
    if not rows:
        print("(no counters in use: every limit is whole)")
    return 0


def _from_redis(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    config = load_or_exit(args)
    if not config.stores.redis_url:
        print(
            "limits: no stores.redis_url: the counters live in the serving gateway's memory; "
            "pass --url http://HOST:PORT (admin key in GATEWAY_ADMIN_KEY)",
            file=sys.stderr,
        )
        return None
    try:
        policies = load_policies(
            config.path(config.policies_dir), config.models, configured_ner(config)
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None

    async def read() -> list[dict[str, Any]]:
        redis = shared_redis(config)
        assert redis is not None  # stores.redis_url is set
        store = RedisStore(redis.limits)
        try:
            return await usage_rows(
                store,
                config.stores.key_prefix,
                policies,
                time.time(),
                args.workflow,
                args.subject,
            )
        finally:
            await redis.aclose()

    return asyncio.run(read())


def _from_gateway(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    key = os.environ.get("GATEWAY_ADMIN_KEY")
    if not key:
        print("limits: set GATEWAY_ADMIN_KEY to a key with the admin role", file=sys.stderr)
        return None
    query = urllib.parse.urlencode(
        {k: v for k, v in (("workflow", args.workflow), ("subject", args.subject)) if v}
    )
    request = urllib.request.Request(
        f"{args.url.rstrip('/')}/admin/limits?{query}",
        headers={"authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        rows: list[dict[str, Any]] = orjson.loads(response.read())["limits"]
    return rows


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return str(value)
