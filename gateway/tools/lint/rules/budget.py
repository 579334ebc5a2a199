"""Budgets need prices and a ceiling: the limits section's own check (``budget_problems``),
each of its two conditions under its own code."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.limits.spec import budget_problems
from gateway.tools.lint.core import Issue, LintContext, PolicyFile, Rule

__all__ = ["RULES"]


def unpriced_model(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    policy = f.policy
    reachable = (*policy.access.models, *policy.fallback.models)
    # A ceiling given here isolates the price condition; ``budget_ceiling`` reports the other.
    for loc, message in budget_problems(policy.limits, reachable, ctx.config.models, 1):
        yield f.issue(
            loc,
            "error",
            "limits.unpriced_model",
            message,
            "set usd_per_mtok_in and usd_per_mtok_out for these models under models: in "
            "gateway.yaml, or drop them from the workflow",
        )


def budget_ceiling(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    policy = f.policy
    for loc, message in budget_problems(
        policy.limits, (), ctx.config.models, policy.access.max_output_tokens
    ):
        yield f.issue(
            loc,
            "error",
            "limits.budget_needs_ceiling",
            message,
            "set access.max_output_tokens",
        )


RULES: tuple[Rule, ...] = (unpriced_model, budget_ceiling)
