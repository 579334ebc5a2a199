"""The file as a whole: its name, its owner, one definition per workflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gateway.tools.lint.core import Issue, LintContext, PolicyFile, Rule

__all__ = ["RULES"]


def file_name(_: LintContext, f: PolicyFile) -> Iterator[Issue]:
    workflow = f.policy.workflow
    name = Path(f.path).name
    suffix = ".candidate.yaml" if f.candidate else Path(f.path).suffix
    stem = name[: -len(suffix)]
    if stem != workflow:
        yield f.issue(
            ("workflow",),
            "error",
            "workflow.file_name",
            f"workflow '{workflow}' must be defined in a file named '{workflow}{suffix}', "
            f"not '{name}'",
            f"rename the file to {workflow}{suffix}, or the workflow to '{stem}'",
        )


def duplicate(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    first = next(
        o
        for o in ctx.files
        if o.policy.workflow == f.policy.workflow and o.candidate == f.candidate
    )
    if first is not f:
        yield f.issue(
            ("workflow",),
            "error",
            "workflow.duplicate",
            f"workflow '{f.policy.workflow}' is also defined in {first.path}",
            "keep one file per workflow",
        )


def candidate_without_live(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    live = {o.policy.workflow for o in ctx.files if not o.candidate}
    if f.candidate and f.policy.workflow not in live:
        yield f.issue(
            ("workflow",),
            "error",
            "workflow.candidate_without_live",
            f"candidate for '{f.policy.workflow}', which has no live policy",
            f"a candidate is compared with {f.policy.workflow}.yaml: add that file, or rename "
            "this one to it to make it live",
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


RULES: tuple[Rule, ...] = (file_name, duplicate, candidate_without_live, owner)
