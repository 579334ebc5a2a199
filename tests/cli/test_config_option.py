"""``--config`` (and ``$GATEWAY_CONFIG``) for every command: accepted before or after the
command name, and explained by every ``--help``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import build_parser
from tests.policy.cliutil import GOOD, make_root, run_cli


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_parser()))


def test_the_parser_has_the_commands_users_type() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"serve", "policy validate", "policy test", "keys create", "audit verify"} <= names


@pytest.mark.parametrize(
    ("path", "parser"), COMMANDS, ids=[" ".join(p) or "gateway" for p, _ in COMMANDS]
)
def test_every_help_says_what_config_does(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    text = " ".join(parser.format_help().split())
    assert "--config CONFIG" in text
    assert "$GATEWAY_CONFIG" in text and "./gateway.yaml" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "x.yaml", "policy", "validate"],
        ["policy", "validate", "--config", "x.yaml"],
        ["policy", "--config", "x.yaml", "validate"],
        ["serve", "--config", "x.yaml", "--port", "9"],
        ["--config", "other.yaml", "keys", "list", "--config", "x.yaml"],
    ],
)
def test_config_is_read_wherever_it_is_given(argv: list[str]) -> None:
    # The last one given wins: after the command, it overrides the one before.
    assert build_parser().parse_args(argv).config == "x.yaml"


def test_without_config_the_value_is_none_so_the_environment_decides() -> None:
    assert build_parser().parse_args(["policy", "validate"]).config is None


def test_serve_with_config_after_the_command_parses() -> None:
    result = run_cli("serve", "--config", "x.yaml", "--help", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "GATEWAY_CONFIG" in result.stdout


def test_serve_reads_the_config_given_after_the_command(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = run_cli("serve", "--config", str(missing), cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "unrecognized arguments" not in result.stderr
    assert f"{missing}:0: cannot read file" in result.stderr


def _policies(stdout: str) -> list[str]:
    """The workflows a ``--format json`` report validated."""
    return sorted(json.loads(stdout)["policies"])


def test_policy_validate_with_config_after_the_command(tmp_path: Path) -> None:
    config = make_root(tmp_path / "gw", {"triage.yaml": GOOD})
    # Run where there is no gateway.yaml: only the option can lead to the folder.
    result = run_cli(
        "policy", "validate", "--config", str(config), "--format", "json", cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert _policies(result.stdout) == ["triage"]


def test_policy_validate_reads_gateway_config_from_the_environment(tmp_path: Path) -> None:
    config = make_root(tmp_path / "gw", {"triage.yaml": GOOD})
    result = run_cli(
        "policy", "validate", "--format", "json",
        cwd=tmp_path, env={"GATEWAY_CONFIG": str(config)}, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _policies(result.stdout) == ["triage"]


def test_the_option_wins_over_the_environment(tmp_path: Path) -> None:
    config = make_root(tmp_path / "gw", {"triage.yaml": GOOD})
    result = run_cli(
        "policy", "validate", "--config", str(config),
        cwd=tmp_path, env={"GATEWAY_CONFIG": str(tmp_path / "missing.yaml")}, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ok  triage" in result.stdout
