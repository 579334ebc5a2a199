"""``gateway serve``: run the gateway with uvicorn (uvloop and httptools, chosen by measurement)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.cli.common import load_or_exit
from gateway.observe.logs import configure_logging
from gateway.yamlsource import ConfigError

__all__ = ["register"]


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser("serve", help="serve the gateway")
    p.add_argument("--host", help="override listen.host")
    p.add_argument("--port", type=int, help="override listen.port")
    p.add_argument("--log-level", default="info")
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log lines as text or one JSON object each (default: observe.access_log.format)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format or "text")
    config = load_or_exit(args)
    if args.log_format is None and config.observe.access_log.format == "json":
        configure_logging(args.log_level, "json")
    try:
        app = create_app(config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=args.host or config.listen.host,
        port=args.port if args.port is not None else config.listen.port,
        loop="uvloop",
        http="httptools",
        access_log=False,  # the gateway's own access line (gateway/observe/logs.py)
        log_config=None,  # uvicorn's lines go through the format configured above
        log_level=args.log_level,
        server_header=False,
    )
    return 0
