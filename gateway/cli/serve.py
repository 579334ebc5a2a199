"""``gateway serve``: run the gateway with uvicorn (uvloop and httptools, chosen by measurement)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.cli.common import load_or_exit
from gateway.protocol import protocol_for
from gateway.yamlsource import ConfigError

__all__ = ["register"]


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser("serve", help="serve the gateway")
    p.add_argument("--host", help="override listen.host")
    p.add_argument("--port", type=int, help="override listen.port")
    p.add_argument("--log-level", default="info")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = load_or_exit(args)
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
        http=protocol_for(config.server),  # httptools, with the head and body bounded
        access_log=False,
        log_level=args.log_level,
        server_header=False,
    )
    return 0
