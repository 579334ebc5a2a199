"""The ``upstream`` section: every fallback model exists and can actually be tried."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.policy.lint.core import Issue, LintContext, PolicyFile, Rule
from gateway.policy.lint.rules.access import CATALOGUE_HINT, did_you_mean, workflow_apis

__all__ = ["RULES"]


def unknown_fallback(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    catalogue = ctx.config.models
    for i, name in enumerate(f.policy.upstream.fallback_models):
        if name not in catalogue:
            yield f.issue(
                ("upstream", "fallback_models", i),
                "error",
                "upstream.unknown_model",
                f"upstream.fallback_models: unknown model '{name}' "
                f"(catalogue: {', '.join(sorted(catalogue))})",
                did_you_mean(name, catalogue) + CATALOGUE_HINT,
            )


def unreachable_fallback(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    """A fallback is tried only for requests in an API its provider speaks (the forwarder
    skips it otherwise), so one that shares no API with a requestable model never runs."""
    apis = workflow_apis(f)
    requested: set[str] = set()
    for model in f.policy.access.models:
        requested |= ctx.model_apis.get(model, frozenset()) & apis
    for i, name in enumerate(f.policy.upstream.fallback_models):
        speaks = ctx.model_apis.get(name)
        if speaks is None or speaks & requested:
            continue
        yield f.issue(
            ("upstream", "fallback_models", i),
            "error",
            "upstream.unreachable_fallback",
            f"upstream.fallback_models: '{name}' is never tried: its provider speaks "
            f"{', '.join(sorted(speaks))}, but this workflow's requests arrive in "
            f"{', '.join(sorted(requested)) or 'no API'}",
            "choose a fallback served through the same API as access.models",
        )


RULES: tuple[Rule, ...] = (unknown_fallback, unreachable_fallback)
