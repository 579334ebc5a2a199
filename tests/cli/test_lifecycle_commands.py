"""The lifecycle commands are where the docs say (docs/policy-lifecycle.md), with the
arguments the docs name."""

from __future__ import annotations

from gateway.cli import build_parser


def test_the_lifecycle_commands_parse_as_documented() -> None:
    parse = build_parser().parse_args
    args = parse(["eval", "w", "--candidate", "--model", "m", "--repeat", "3", "--offline"])
    assert (args.workflow, args.candidate, args.model, args.repeat, args.offline) == (
        "w", True, "m", 3, True,
    )  # fmt: skip
    args = parse(["policy", "promote", "w", "--accept-changes", "--reason", "r", "--by", "b"])
    assert (args.workflow, args.accept_changes, args.reason, args.by) == ("w", True, "r", "b")
    assert parse(["policy", "promote", "w", "--since", "12h"]).since > 0
    assert parse(["policy", "rollback", "w", "--to", "sha256:ab"]).to == "sha256:ab"
    assert parse(["policy", "history", "w", "--format", "json"]).format == "json"
    diff = parse(["policy", "diff", "w", "v1", "v2"])
    assert (diff.workflow, diff.old, diff.new) == ("w", "v1", "v2")
    assert parse(["policy", "show", "w", "v"]).version == "v"
