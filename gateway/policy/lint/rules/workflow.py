"""The file as a whole: its name, its owner, one definition per workflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gateway.policy.lint.core import Issue, LintContext, PolicyFile, Rule

__all__ = ["RULES"]


def file_name(_: LintContext, f: PolicyFile) -> Iterator[Issue]:
    workflow = f.policy.workflow
    if Path(f.path).stem != workflow:
        yield f.issue(
            ("workflow",),
            "error",
            "workflow.file_name",
            f"workflow '{workflow}' must be defined in a file named '{workflow}.yaml', "
            f"not '{Path(f.path).name}'",
            f"rename the file to {workflow}.yaml, or the workflow to '{Path(f.path).stem}'",
        )


def duplicate(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    first = next(o for o in ctx.files if o.policy.workflow == f.policy.workflow)
    if first is not f:
        yield f.issue(
            ("workflow",),
            "error",
            "workflow.duplicate",
            f"workflow '{f.policy.workflow}' is also defined in {first.path}",
            "keep one file per workflow",
        )


def owner(_: LintContext, f: PolicyFile) -> Iterator[Issue]:
    if not f.policy.owner.strip():
        yield f.issue(
            ("owner",),
            "error",
            "workflow.no_owner",
            "owner is empty: nobody answers for this workflow's decisions",
            "set owner to a team address, e.g. 'owner: sales-ops@example.com'",
        )


RULES: tuple[Rule, ...] = (file_name, duplicate, owner)
