"""Budgets need prices: a model without them could spend without limit under a budget.

The ``limits`` section lands with the limits issue; until a policy has ``limits.budget``
entries this rule finds nothing. It reads the section by attribute so it needs no change when
the section's model appears (``limits.budget``: a non-empty list means a budget exists).
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.policy.lint.core import Issue, LintContext, PolicyFile, Rule

__all__ = ["RULES", "has_budget"]


def has_budget(f: PolicyFile) -> bool:
    limits = getattr(f.policy, "limits", None)
    return bool(getattr(limits, "budget", None))


def unpriced_model(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    if not has_budget(f):
        return
    policy = f.policy
    used = [("access", "models", i, m) for i, m in enumerate(policy.access.models)]
    used += [
        ("upstream", "fallback_models", i, m) for i, m in enumerate(policy.upstream.fallback_models)
    ]
    for section, field, i, name in used:
        model = ctx.config.models.get(name)
        if model is None:
            continue  # reported as an unknown model
        missing = [p for p in ("usd_per_mtok_in", "usd_per_mtok_out") if getattr(model, p) is None]
        if missing:
            yield f.issue(
                (section, field, i),
                "error",
                "limits.unpriced_model",
                f"{section}.{field}: model '{name}' has no {' or '.join(missing)} in gateway.yaml, "
                "so the budget cannot count what it spends",
                f"set {', '.join(missing)} for '{name}' under models: in gateway.yaml",
            )


RULES: tuple[Rule, ...] = (unpriced_model,)
