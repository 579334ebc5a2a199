"""``gateway policy validate|test|explain|replay``: check policies before they are live;
``history|diff|show``: the versions loaded (gateway/cli/policy_history.py); ``promote|rollback``:
change the live version (gateway/cli/policy_promote.py).

Exit codes (CI): 0 clean, 1 errors (or failed tests), 2 warnings only under ``--strict``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from gateway.boundary.service import configured_ner
from gateway.cli import policy_explain, policy_history, policy_promote, policy_test
from gateway.cli.common import config_path
from gateway.cli.policy_replay import add_replay
from gateway.config import GatewayConfig, load_config
from gateway.tools.lint import Issue, LintReport, lint_policies
from gateway.yamlsource import ConfigError

__all__ = ["register"]


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser("policy", help="work with policies")
    sub = p.add_subparsers(dest="policy_command", required=True)
    validate = sub.add_parser(
        "validate",
        help="schema and semantic lint; exit 1 on errors, 2 on warnings with --strict",
    )
    validate.add_argument("dir", nargs="?", help="policies folder (default: policies_dir)")
    validate.add_argument("--strict", action="store_true", help="exit 2 when only warnings")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.set_defaults(handler=run_validate)
    policy_test.add_parser(sub)
    policy_explain.add_parser(sub)
    add_replay(sub)
    policy_history.add_parsers(sub)
    policy_promote.add_parsers(sub)


def run_validate(args: argparse.Namespace) -> int:
    try:
        config = load_config(config_path(args))
        directory = Path(args.dir) if args.dir else config.path(config.policies_dir)
        report = lint(config, directory)
    except ConfigError as exc:
        report = LintReport(
            [
                Issue(p.file, p.line, "error", "config.invalid", p.message, "fix gateway.yaml")
                for p in exc.problems
            ]
        )
    if args.format == "json":
        sys.stdout.write(orjson.dumps(_as_json(report), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        _print_text(report)
    if report.errors:
        return 1
    return 2 if report.warnings and args.strict else 0


def lint(config: GatewayConfig, directory: Path) -> LintReport:
    """Every issue of the folder; raises ConfigError if gateway.yaml's NER model is missing."""
    return lint_policies(directory, config, configured_ner(config))


def _print_text(report: LintReport) -> None:
    for issue in report.issues:
        print(f"{issue.file}:{issue.line}: {issue.message} ({issue.severity} {issue.code})",
              file=sys.stderr)  # fmt: skip
        if issue.hint:
            print(f"    fix: {issue.hint}", file=sys.stderr)
    for name, p in sorted(report.policies.items()):
        print(f"ok  {name:<24} {p.version}  {p.path}")
    for name, p in sorted(report.candidates.items()):
        print(f"ok  {name + ' (candidate)':<24} {p.version}  {p.path}")
    if report.issues:
        print(f"{report.errors} error(s), {report.warnings} warning(s)", file=sys.stderr)


def _as_json(report: LintReport) -> dict[str, object]:
    return {
        "errors": report.errors,
        "warnings": report.warnings,
        "issues": [i.as_dict() for i in report.issues],
        "policies": {
            n: {"version": p.version, "file": p.path} for n, p in sorted(report.policies.items())
        },
        "candidates": {
            n: {"version": p.version, "file": p.path} for n, p in sorted(report.candidates.items())
        },
    }
