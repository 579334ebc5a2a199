"""The ``access`` section: models from the catalogue, roles someone can hold."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator

from gateway.tools.lint.core import Issue, LintContext, PolicyFile, Rule

__all__ = ["RULES", "did_you_mean", "uncatalogued"]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def uncatalogued(
    ctx: LintContext, f: PolicyFile, section: str, names: Iterable[str]
) -> Iterator[Issue]:
    """``SECTION.unknown_model`` for each of ``SECTION.models`` not in gateway.yaml."""
    catalogue = ctx.config.models
    for i, name in enumerate(names):
        if name not in catalogue:
            yield f.issue(
                (section, "models", i),
                "error",
                f"{section}.unknown_model",
                f"{section}.models: unknown model '{name}' "
                f"(catalogue: {', '.join(sorted(catalogue))})",
                f"{did_you_mean(name, catalogue)}models are defined under 'models:' in "
                "gateway.yaml",
            )


def unknown_model(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    return uncatalogued(ctx, f, "access", f.policy.access.models)


def unknown_role(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    """A role nobody can hold admits nobody: a typo, or a role the IdP does not issue.

    With ``auth.roles`` in gateway.yaml (the organisation's role set) an unlisted role is an
    error. Without it, the gateway cannot know what an identity provider's tokens carry, so a
    role no gateway key holds is only a warning.
    """
    declared = ctx.declared_roles
    for i, role in enumerate(f.policy.access.roles):
        if declared is not None:
            if role not in declared:
                yield f.issue(
                    ("access", "roles", i),
                    "error",
                    "access.unknown_role",
                    f"access.roles: role '{role}' is not in auth.roles of gateway.yaml",
                    f"{did_you_mean(role, declared)}or add '{role}' to auth.roles",
                )
        elif role not in ctx.key_roles:
            source = " nor is auth.roles set" if ctx.jwt_configured else ""
            yield f.issue(
                ("access", "roles", i),
                "warning",
                "access.unknown_role",
                f"access.roles: no gateway key holds role '{role}'{source}",
                f"{did_you_mean(role, ctx.key_roles)}list the roles your keys and identity "
                "provider issue under auth.roles in gateway.yaml to check roles exactly",
            )


RULES: tuple[Rule, ...] = (unknown_model, unknown_role)
