"""What a lint rule sees and says: one policy file in the gateway's context, and issues.

A rule is a plain function ``(LintContext, PolicyFile) -> Iterable[Issue]``. Rules live in
modules of ``gateway/tools/lint/rules/``, each listing its rules in ``RULES``; a policy section
that lands later adds its own module there and touches no other rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from gateway.config import GatewayConfig
from gateway.policy.models import Policy
from gateway.yamlsource import line_of

__all__ = ["Issue", "LintContext", "PolicyFile", "Rule", "Severity"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding: where, how bad, a stable ``code`` for CI tools, and how to fix it."""

    file: str
    line: int
    severity: Severity
    code: str
    message: str
    hint: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(frozen=True, slots=True)
class PolicyFile:
    """A policy that passed the schema, with its parsed document for line numbers."""

    path: str
    policy: Policy
    doc: Any
    candidate: bool = False  # W.candidate.yaml: the next version of W.yaml, not a second W

    def issue(
        self, loc: tuple[str | int, ...], severity: Severity, code: str, message: str, hint: str
    ) -> Issue:
        """An issue at the line of ``loc`` (the deepest key of it that the file has)."""
        return Issue(self.path, line_of(self.doc, loc), severity, code, message, hint)


@dataclass(frozen=True, slots=True)
class LintContext:
    """What rules check a policy against.

    ``declared_roles`` is gateway.yaml's ``auth.roles`` (None when not set); ``key_roles``
    the roles held by active gateway keys; ``files`` every schema-valid policy of the
    folder.
    """

    config: GatewayConfig
    ner_configured: bool
    declared_roles: frozenset[str] | None
    key_roles: frozenset[str]
    jwt_configured: bool
    files: tuple[PolicyFile, ...]


Rule = Callable[[LintContext, PolicyFile], Iterable[Issue]]
