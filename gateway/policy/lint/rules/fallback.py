"""Fallback models: each one exists and can actually be tried."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.policy.lint.core import Issue, LintContext, PolicyFile, Rule, fallback_models
from gateway.policy.lint.rules.access import CATALOGUE_HINT, did_you_mean, workflow_apis

__all__ = ["RULES"]


def unknown_model(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    catalogue = ctx.config.models
    where, names = fallback_models(f.policy)
    for i, name in enumerate(names):
        if name not in catalogue:
            yield f.issue(
                (*where, i),
                "error",
                "fallback.unknown_model",
                f"{'.'.join(where)}: unknown model '{name}' "
                f"(catalogue: {', '.join(sorted(catalogue))})",
                did_you_mean(name, catalogue) + CATALOGUE_HINT,
            )


def unreachable_model(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    """A fallback is tried only for requests in an API its provider speaks (the forwarder
    skips it otherwise), so one that shares no API with a requestable model never runs."""
    apis = workflow_apis(f)
    requested: set[str] = set()
    for model in f.policy.access.models:
        requested |= ctx.model_apis.get(model, frozenset()) & apis
    where, names = fallback_models(f.policy)
    for i, name in enumerate(names):
        speaks = ctx.model_apis.get(name)
        if speaks is None or speaks & requested:
            continue
        yield f.issue(
            (*where, i),
            "error",
            "fallback.unreachable_model",
            f"{'.'.join(where)}: '{name}' is never tried: its provider speaks "
            f"{', '.join(sorted(speaks))}, but this workflow's requests arrive in "
            f"{', '.join(sorted(requested)) or 'no API'}",
            "choose a fallback served through the same API as access.models",
        )


RULES: tuple[Rule, ...] = (unknown_model, unreachable_model)
