"""``gateway eval``: a workflow's evaluation set through the real pipeline, its metric against
the target, and the comparison with the last recorded run of the same set.

The cases go through the pipeline ``policy test`` and ``explain`` drive
(gateway/tools/offline.py): real authentication, access, data boundary, quality checks and
fallbacks, against the configured upstream, or with ``offline`` each case's recorded
``answer`` (the mock's quote of the prompt for a case without one). ``repeat`` runs each case
that many times: a model that answers differently run to run shows as a lower pass rate.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.audit.history import EvalRun
from gateway.boundary.ner import NerModel
from gateway.config import GatewayConfig
from gateway.policy.candidates import load_candidates
from gateway.policy.compile import CompiledPolicy
from gateway.policy.loader import load_policies
from gateway.rollout.spec import EvaluationPolicy
from gateway.steps import decide
from gateway.tools.cases import CasePrincipal, CaseRequest
from gateway.tools.evalset import EvalCase, EvalSet
from gateway.tools.offline import OfflineGateway
from gateway.yamlsource import ConfigError, Problem

__all__ = [
    "CaseResult",
    "EvalReport",
    "evaluated_policies",
    "regression",
    "run_set",
]


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    line: int
    attempt: int  # 1..repeat
    decision: str
    text: str
    failures: list[str]


@dataclass(slots=True)
class EvalReport:
    """A run's outcome; ``value`` is the metric (``pass_rate``: passed / runs)."""

    workflow: str
    version: str
    candidate: bool
    model: str
    offline: bool
    evaluation: EvaluationPolicy
    set_digest: str
    results: list[CaseResult] = field(default_factory=list)
    at: float = field(default_factory=time.time)

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if not r.failures)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def value(self) -> float:
        return self.passed / len(self.results) if self.results else 0.0

    @property
    def met(self) -> bool:
        return self.value >= self.evaluation.target

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.name for r in self.results if r.failures))

    def as_run(self) -> EvalRun:
        return EvalRun(
            self.workflow, self.at, self.version, self.candidate, self.model, self.offline,
            self.set_digest, self.evaluation.metric, self.value, self.evaluation.target,
            self.passed, self.failed, self.failing,
        )  # fmt: skip


def evaluated_policies(
    config: GatewayConfig,
    directory: Path,
    workflow: str,
    candidate: bool,
    ner: NerModel | None,
) -> tuple[dict[str, CompiledPolicy], CompiledPolicy, CompiledPolicy]:
    """The live policies with ``workflow`` replaced by its candidate when ``candidate``, the
    policy evaluated and the live one; raises ConfigError when either does not load."""
    live = load_policies(directory, config.models, ner)
    if workflow not in live:
        raise ConfigError([Problem(str(directory), 0, f"no live policy '{workflow}'")])
    if not candidate:
        return live, live[workflow], live[workflow]
    found = load_candidates(directory, live, config.models, ner).get(workflow)
    if found is None:
        where = str(directory / f"{workflow}.candidate.yaml")
        raise ConfigError([Problem(where, 0, f"no candidate for '{workflow}'")])
    return {**live, workflow: found}, found, live[workflow]


def _principal(case: EvalCase, policy: CompiledPolicy) -> CasePrincipal:
    """The case's caller, else one the policy admits: its roles, first subject and team."""
    if case.principal is not None:
        return case.principal
    access = policy.source.access
    subject = access.subjects[0] if access.subjects else "eval"
    team = access.teams[0] if access.teams else None
    return CasePrincipal(subject=subject, roles=tuple(access.roles), team=team)


async def run_set(
    config: GatewayConfig,
    policies: Mapping[str, CompiledPolicy],
    policy: CompiledPolicy,
    evaluation: EvaluationPolicy,
    cases: EvalSet,
    *,
    candidate: bool,
    model: str | None,
    repeat: int,
    offline: bool,
) -> EvalReport:
    """Every case ``repeat`` times under ``policy`` (as ``policies[policy.name]``)."""
    report = EvalReport(
        policy.name, policy.version, candidate, model or "", offline, evaluation, cases.digest
    )
    callers = [_principal(c, policy) for _, c in cases.cases]
    with tempfile.TemporaryDirectory(prefix="gateway-eval-") as scratch:
        async with OfflineGateway(
            config, dict(policies), Path(scratch), callers, upstream=not offline
        ) as gateway:
            for attempt in range(1, repeat + 1):
                for (line, case), caller in zip(cases.cases, callers, strict=True):
                    request = CaseRequest(
                        api=case.api,
                        model=model or case.model or policy.access.models[0],
                        messages=case.messages,
                        system=case.system,
                    )
                    answer = case.answer if offline else None
                    done = await gateway.send(policy.name, caller, request, answer)
                    decision = decide(done.ctx.decisions).outcome
                    failures = case.failures(done.client_text, decision, done.ctx.fallback)
                    report.results.append(
                        CaseResult(case.name, line, attempt, decision, done.client_text, failures)
                    )
    return report


def regression(report: EvalReport, earlier: Sequence[EvalRun]) -> str | None:
    """What got worse since the last recorded run of the same set (``earlier``: newest
    first), or None: a lower metric is a regression, naming the cases that newly fail."""
    last = next((r for r in earlier if r.set_digest == report.set_digest), None)
    if last is None or report.value >= last.value:
        return None
    newly = [name for name in report.failing if name not in last.failing]
    named = f"; newly failing: {', '.join(newly)}" if newly else ""
    return (
        f"{report.evaluation.metric} {report.value:.3f} < {last.value:.3f} in the last run "
        f"(version {last.version}, model {last.model or 'per case'}){named}"
    )
