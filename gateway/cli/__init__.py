"""``gateway``: serve, manage keys, validate policies, read and check the audit trail, show
limits usage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway.cli import audit, keys, limits, policy, serve

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    parser.add_argument(
        "--config",
        default=None,
        help="path to gateway.yaml (default: $GATEWAY_CONFIG or ./gateway.yaml)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (serve, keys, policy, audit, limits):
        module.register(commands)
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
