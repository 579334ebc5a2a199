"""Run every lint rule over a policies folder: schema first, then the semantic rules.

The loader stays the authority on what the gateway will load: anything ``load_policies``
refuses that no rule reported is added as ``policy.load``, so ``validate`` never passes a
folder the gateway would not start with.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gateway.auth.keys import read_keys
from gateway.boundary.ner import NerModel
from gateway.config import GatewayConfig
from gateway.policy.candidates import SUFFIX, candidate_files, load_candidates
from gateway.policy.compile import CompiledPolicy
from gateway.policy.loader import load_policies, policy_files
from gateway.policy.models import Policy
from gateway.tools.lint import rules as rules_package
from gateway.tools.lint.core import Issue, LintContext, PolicyFile, Rule
from gateway.yamlsource import ConfigError, Problem, load_model

__all__ = ["LintReport", "all_rules", "lint_policies"]


@dataclass(slots=True)
class LintReport:
    issues: list[Issue] = field(default_factory=list)
    # The policies that passed: loadable by the gateway and without an error of their own.
    policies: dict[str, CompiledPolicy] = field(default_factory=dict)
    candidates: dict[str, CompiledPolicy] = field(default_factory=dict)  # W.candidate.yaml

    @property
    def errors(self) -> int:
        return sum(1 for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for i in self.issues if i.severity == "warning")


def all_rules() -> list[Rule]:
    """The ``RULES`` of every module of ``gateway.tools.lint.rules``, modules in name order."""
    found: list[Rule] = []
    for info in sorted(pkgutil.iter_modules(rules_package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{rules_package.__name__}.{info.name}")
        found.extend(getattr(module, "RULES", ()))
    return found


def lint_policies(
    directory: Path,
    config: GatewayConfig,
    ner: NerModel | None = None,
) -> LintReport:
    """Every issue of every policy file in ``directory`` (candidates, ``W.candidate.yaml``,
    included: each is checked as the live policy it may become), sorted by file and line."""
    report = LintReport()
    if not directory.is_dir():
        report.issues.append(
            Issue(
                str(directory),
                0,
                "error",
                "schema.no_folder",
                "policies folder does not exist",
                "pass the folder as DIR or set policies_dir in gateway.yaml",
            )
        )
        return report
    files: list[PolicyFile] = []
    for path in (*policy_files(directory), *candidate_files(directory)):
        try:
            policy, doc = load_model(path, Policy)
        except ConfigError as exc:
            report.issues.extend(_schema_issue(p) for p in exc.problems)
            continue
        files.append(PolicyFile(str(path), policy, doc, path.name.endswith(SUFFIX)))
    ctx = _context(config, ner is not None, tuple(files))
    for f in files:
        for rule in all_rules():
            report.issues.extend(rule(ctx, f))
    try:
        report.policies = load_policies(directory, config.models, ner)
        report.candidates = load_candidates(directory, report.policies, config.models, ner)
    except ConfigError as exc:
        report.issues.extend(_unreported(exc.problems, report.issues))
    failed = {i.file for i in report.issues if i.severity == "error"}
    report.policies = {n: p for n, p in report.policies.items() if p.path not in failed}
    report.candidates = {n: p for n, p in report.candidates.items() if p.path not in failed}
    report.issues.sort(key=lambda i: (i.file, i.line, i.code))
    return report


def _context(
    config: GatewayConfig,
    ner_configured: bool,
    files: tuple[PolicyFile, ...],
) -> LintContext:
    auth = config.auth
    declared = frozenset((*auth.roles, auth.admin_role)) if auth.roles is not None else None
    now = datetime.now(UTC)
    try:
        records = read_keys(config.path(auth.api_keys_file))
    except ConfigError:
        records = []  # a broken keys file is the gateway's start-up error, not a policy's
    held = frozenset(r for k in records if k.status(now) == "active" for r in k.roles)
    return LintContext(
        config=config,
        ner_configured=ner_configured,
        declared_roles=declared,
        key_roles=held,
        jwt_configured=auth.jwt is not None,
        files=files,
    )


_SCHEMA_CODES = (
    ("cannot read file", "schema.unreadable", "check the file's permissions"),
    ("invalid YAML", "schema.yaml", "fix the YAML syntax at this line"),
    ("unknown key", "schema.unknown_key", "fix the key's spelling or remove it"),
    ("owner: Field required", "workflow.no_owner",
     "add 'owner: team@example.com': who answers for this workflow"),
    ("Field required", "schema.missing", "add the missing key"),
)  # fmt: skip


def _schema_issue(problem: Problem) -> Issue:
    for fragment, code, hint in _SCHEMA_CODES:
        if fragment in problem.message:
            return Issue(problem.file, problem.line, "error", code, problem.message, hint)
    return Issue(
        problem.file, problem.line, "error", "schema.invalid", problem.message,
        "see the policy reference in docs/policy.md",
    )  # fmt: skip


def _unreported(problems: list[Problem], issues: list[Issue]) -> Iterator[Issue]:
    seen = {(i.file, i.line) for i in issues if i.severity == "error"}
    for p in problems:
        if (p.file, p.line) not in seen:
            yield Issue(
                p.file,
                p.line,
                "error",
                "policy.load",
                p.message,
                "the gateway refuses to load this policy; fix the problem named",
            )
