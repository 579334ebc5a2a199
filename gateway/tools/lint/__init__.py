"""Semantic lint of policy files (``gateway policy validate``): problems at file:line, each
with a severity, a stable code and a fix hint. Rules: ``gateway/tools/lint/rules/``."""

from gateway.tools.lint.core import Issue, LintContext, PolicyFile, Rule, Severity
from gateway.tools.lint.run import LintReport, all_rules, lint_policies

__all__ = [
    "Issue",
    "LintContext",
    "LintReport",
    "PolicyFile",
    "Rule",
    "Severity",
    "all_rules",
    "lint_policies",
]
