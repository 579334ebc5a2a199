"""``gateway``: serve, migrate the audit schema, manage keys, validate, evaluate, promote and
roll back policies, read and check the audit trail, show limits usage.

Every command reads ``gateway.yaml``: the file ``--config`` names, else the one
``$GATEWAY_CONFIG`` names, else ``./gateway.yaml``. Relative paths in it (policies folder, keys
file, audit database) are relative to its folder.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

# command -> the module of this package that registers it, imported only when named (below)
COMMANDS = {
    "serve": "serve", "migrate": "migrate", "keys": "keys", "policy": "policy",
    "eval": "evaluate", "audit": "audit", "limits": "limits", "report": "report",
    "workflow": "workflow",
}  # fmt: skip

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


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line; nested subparsers inherit ``_Parser`` (argparse uses the parent's
    class), so every level knows ``--config``. With ``argv`` naming a command, only that
    command's module is imported: ``gateway serve`` starts without the other commands' tools
    (~30 modules; docs/performance.md). Otherwise (help, a typo) every command is there."""
    parser = argparse.ArgumentParser(
        prog="gateway",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=None, help=CONFIG_HELP)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    named = None if argv is None else _command(argv)
    for name in (named,) if named else COMMANDS:
        importlib.import_module(f"gateway.cli.{COMMANDS[name]}").register(commands)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, if it names one before any help option."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
        elif not word.startswith("--config="):
            return None  # -h, --help, or an option argparse will refuse
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
