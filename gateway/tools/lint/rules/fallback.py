"""The ``fallback`` section: every fallback model exists and can actually be tried."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.fallback.triggers import ANSWER_TRIGGERS
from gateway.tools.lint.core import Issue, LintContext, PolicyFile, Rule
from gateway.tools.lint.rules.access import uncatalogued

__all__ = ["RULES"]


def unknown_model(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    return uncatalogued(ctx, f, "fallback", f.policy.fallback.models)


def unreachable_model(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    """Models are tried only for the triggers another model may cure. (Every provider takes
    both APIs, translated where needed, so the API never makes a model unreachable.)"""
    fallback = f.policy.fallback
    if fallback.models and not ANSWER_TRIGGERS & set(fallback.on):
        yield f.issue(
            ("fallback", "on"),
            "error",
            "fallback.unreachable_model",
            f"fallback.models are never tried: fallback.on has only {', '.join(fallback.on)}, "
            "which another model cannot cure",
            f"add one of {', '.join(sorted(ANSWER_TRIGGERS))} to fallback.on, or drop "
            "fallback.models",
        )


RULES: tuple[Rule, ...] = (unknown_model, unreachable_model)
