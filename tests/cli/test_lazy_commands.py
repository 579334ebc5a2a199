"""``gateway serve`` imports no other command's module (their tools are ~30 modules of
start-up, docs/performance.md); help and a mistyped command still show every command."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from gateway.cli import COMMANDS, _command, build_parser

_IMPORTED = """
import json, sys
from gateway.cli import build_parser
build_parser({argv!r})
print(json.dumps(sorted(m for m in sys.modules if m.startswith("gateway.cli."))))
"""


def _cli_modules(argv: list[str]) -> list[str]:
    code = _IMPORTED.format(argv=argv)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return modules


def test_serve_imports_only_its_own_command() -> None:
    assert _cli_modules(["--config", "x.yaml", "serve", "--port", "0"]) == [
        "gateway.cli.common",
        "gateway.cli.serve",
        "gateway.cli.supervisor",
    ]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["serve"], "serve"),
        (["--config", "x.yaml", "eval", "w"], "eval"),
        (["--config=x.yaml", "keys", "list"], "keys"),
        (["--help"], None),
        (["-h", "serve"], None),
        (["servr"], None),
        ([], None),
    ],
)
def test_the_command_named(argv: list[str], named: str | None) -> None:
    assert _command(argv) == named


def _names(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_without_a_command_every_command_is_registered() -> None:
    assert _names(build_parser()) == set(COMMANDS)
    assert _names(build_parser(["--help"])) == set(COMMANDS)
    assert _names(build_parser(["servr"])) == set(COMMANDS)
    assert _names(build_parser(["eval", "w"])) == {"eval"}
