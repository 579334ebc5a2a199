"""``gateway eval W [--candidate] [--model M] [--repeat N] [--offline]``: run the workflow's
evaluation set (gateway/tools/evaluate.py), print the metric against its target with the
failing cases, record the run in the audit database and compare it with the last one.

Exit 0 when the target is met and nothing regressed; 1 below the target or on a regression;
2 when the policy, the set or the history cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from gateway.audit.history import HistoryError, open_history
from gateway.boundary.service import configured_ner
from gateway.cli.common import load_or_exit
from gateway.config import GatewayConfig
from gateway.rollout.spec import EvaluationPolicy
from gateway.tools.evalset import load_set
from gateway.tools.evaluate import EvalReport, evaluated_policies, regression, run_set
from gateway.yamlsource import ConfigError

__all__ = ["EvalUnavailable", "evaluate", "print_report", "register"]


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "eval", help="run a workflow's evaluation set; exit 1 below target or on a regression"
    )
    p.add_argument("workflow")
    p.add_argument("--candidate", action="store_true", help="evaluate W.candidate.yaml")
    p.add_argument("--model", help="send every case to this model instead of its own")
    p.add_argument("--repeat", type=int, default=1, help="run each case N times (default 1)")
    p.add_argument(
        "--offline",
        action="store_true",
        help="play back each case's recorded answer (the mock's for none) instead of asking "
        "the configured upstream",
    )
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=run)


class EvalUnavailable(Exception):
    """The evaluation could not run (its message says why); exit 2."""


async def evaluate(
    config: GatewayConfig,
    workflow: str,
    *,
    candidate: bool,
    model: str | None,
    repeat: int,
    offline: bool,
) -> tuple[EvalReport, str | None] | None:
    """Run, compare with the last run of the same set, record; None when neither the policy
    nor (for a candidate) the live one declares ``evaluation``. Raises EvalUnavailable."""
    directory = config.path(config.policies_dir)
    try:
        policies, policy, live = evaluated_policies(
            config, directory, workflow, candidate, configured_ner(config)
        )
        # A candidate that drops the section is still held to the live policy's set.
        declared: EvaluationPolicy | None = policy.source.evaluation or live.source.evaluation
        if declared is None:
            return None
        cases = load_set(directory, declared.set)
    except ConfigError as exc:
        raise EvalUnavailable(str(exc)) from None
    if model is not None and model not in config.models:
        raise EvalUnavailable(f"--model {model}: not in gateway.yaml's catalogue")
    report = await run_set(
        config, policies, policy, declared, cases,
        candidate=candidate, model=model, repeat=max(1, repeat), offline=offline,
    )  # fmt: skip
    history = open_history(config)
    try:
        worse = regression(report, await history.eval_runs(workflow, 50))
        await history.record_eval(report.as_run())
    except HistoryError as exc:
        raise EvalUnavailable(f"the run could not be recorded: {exc}") from None
    return report, worse


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    try:
        outcome = asyncio.run(
            evaluate(
                config, args.workflow, candidate=args.candidate, model=args.model,
                repeat=args.repeat, offline=args.offline,
            )
        )  # fmt: skip
    except EvalUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    if outcome is None:
        print(f"{args.workflow} declares no evaluation set (evaluation.set)", file=sys.stderr)
        return 2
    report, worse = outcome
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(_as_json(report, worse), option=orjson.OPT_INDENT_2))
        sys.stdout.write("\n")
    else:
        print_report(report, worse)
    return 0 if report.met and worse is None else 1


def print_report(report: EvalReport, worse: str | None) -> None:
    e = report.evaluation
    which = "candidate" if report.candidate else "live"
    mode = "offline (recorded answers)" if report.offline else "configured upstream"
    print(f"{report.workflow} {which} {report.version}  set {e.set}  {mode}")
    for r in report.results:
        if r.failures:
            again = f" (run {r.attempt})" if r.attempt > 1 else ""
            print(f"FAIL  line {r.line}  {r.name}{again}  decision {r.decision}")
            for failure in r.failures:
                print(f"        {failure}")
    verdict = "meets" if report.met else "BELOW"
    print(
        f"{e.metric} {report.value:.3f} ({report.passed}/{len(report.results)}) {verdict} "
        f"target {e.target:.3f}"
    )
    if worse is not None:
        print(f"REGRESSION: {worse}")


def _as_json(report: EvalReport, worse: str | None) -> dict[str, object]:
    return {
        "workflow": report.workflow,
        "version": report.version,
        "candidate": report.candidate,
        "model": report.model or None,
        "offline": report.offline,
        "set": report.evaluation.set,
        "metric": report.evaluation.metric,
        "value": report.value,
        "target": report.evaluation.target,
        "met": report.met,
        "passed": report.passed,
        "failed": report.failed,
        "regression": worse,
        "failures": [
            {"case": r.name, "line": r.line, "attempt": r.attempt, "decision": r.decision,
             "failures": r.failures}
            for r in report.results
            if r.failures
        ],
    }  # fmt: skip
