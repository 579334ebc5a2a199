"""``gateway policy test [DIR]``: run ``DIR/tests/*.yaml`` through the real pipeline, offline.

Prints a pass/fail table and each failure's differences; exit 0 when every case passes, 1 on
any failure, a broken test file or a policy that does not load.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.boundary.service import configured_ner
from gateway.cli.common import config_path
from gateway.config import GatewayConfig, load_config
from gateway.policy.loader import load_policies
from gateway.tools.cases import LocatedCase, Observed, case_files, load_cases
from gateway.tools.offline import OfflineGateway
from gateway.yamlsource import ConfigError

__all__ = ["add_parser", "run_cases"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    test = sub.add_parser("test", help="run policies/tests/*.yaml offline; exit 1 on a failure")
    test.add_argument("dir", nargs="?", help="policies folder (default: policies_dir)")
    test.add_argument("--format", choices=("text", "json"), default="text")
    test.set_defaults(handler=run_test)


@dataclass(frozen=True, slots=True)
class Result:
    case: LocatedCase
    observed: Observed
    failures: list[str]


def run_test(args: argparse.Namespace) -> int:
    try:
        config = load_config(config_path(args))
        directory = Path(args.dir) if args.dir else config.path(config.policies_dir)
        policies = load_policies(directory, config.models, configured_ner(config))
        files = case_files(directory)
        cases = load_cases(files, set(policies))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s): no case was run", file=sys.stderr)
        return 1
    if not cases:
        print(f"no test cases in {directory / 'tests'}", file=sys.stderr)
        return 1
    results = asyncio.run(run_cases(config, directory, cases))
    if args.format == "json":
        print(orjson.dumps([_as_json(r) for r in results], option=orjson.OPT_INDENT_2).decode())
    else:
        _print_table(results)
    return 1 if any(r.failures for r in results) else 0


async def run_cases(
    config: GatewayConfig, directory: Path, cases: list[LocatedCase]
) -> list[Result]:
    policies = load_policies(directory, config.models, configured_ner(config))
    callers = [c.case.principal for c in cases]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="gateway-policy-test-") as scratch:
        async with OfflineGateway(config, policies, Path(scratch), callers) as gateway:
            for located in cases:
                case = located.case
                observed = await gateway.run(
                    located.workflow, case.principal, case.request, case.upstream_answer
                )
                results.append(Result(located, observed, observed.failures(case.expect)))
    return results


def _print_table(results: list[Result]) -> None:
    width = max(len(r.case.where) for r in results)
    flow = max(len(r.case.workflow) for r in results)
    print(f"{'result':<6}  {'where':<{width}}  {'workflow':<{flow}}  {'decision':<9}  case")
    for r in results:
        verdict = "FAIL" if r.failures else "pass"
        print(
            f"{verdict:<6}  {r.case.where:<{width}}  {r.case.workflow:<{flow}}  "
            f"{r.observed.decision:<9}  {r.case.case.name}"
        )
        for failure in r.failures:
            print(f"{'':<8}{failure}")
    failed = sum(1 for r in results if r.failures)
    print(f"{len(results) - failed} passed, {failed} failed")


def _as_json(r: Result) -> dict[str, object]:
    o = r.observed
    return {
        "file": r.case.file,
        "line": r.case.line,
        "workflow": r.case.workflow,
        "case": r.case.case.name,
        "passed": not r.failures,
        "failures": r.failures,
        "observed": {
            "decision": o.decision,
            "reasons": o.reasons,
            "status": o.status,
            "upstream_text": o.upstream_text,
            "client_text": o.client_text,
        },
    }
