"""``gateway``: serve, migrate the audit schema, manage keys, validate, evaluate, promote and
roll back policies, read and check the audit trail, show limits usage.

Every command reads ``gateway.yaml``: the file ``--config`` names, else the one
``$GATEWAY_CONFIG`` names, else ``./gateway.yaml``. Relative paths in it (policies folder, keys
file, audit database) are relative to its folder.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from gateway.cli import audit, evaluate, keys, limits, migrate, policy, report, serve, workflow

__all__ = ["main"]

CONFIG_HELP = (
    "path to gateway.yaml (default: $GATEWAY_CONFIG, else ./gateway.yaml); relative paths in "
    "it are read from its folder. Accepted before or after the command"
)


class _Parser(argparse.ArgumentParser):
    """Every (sub)command parser also takes ``--config``, so ``gateway serve --config x.yaml``
    works as well as ``gateway --config x.yaml serve``.

    Its default is SUPPRESS: a subcommand where it was not given leaves the value parsed
    before the command (or None) untouched, instead of resetting it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; nested subparsers inherit ``_Parser`` (argparse uses the
    parent's class), so every level knows ``--config``."""
    parser = argparse.ArgumentParser(
        prog="gateway",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=None, help=CONFIG_HELP)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (serve, migrate, keys, policy, evaluate, audit, limits, report, workflow):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
