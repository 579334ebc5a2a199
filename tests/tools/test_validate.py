"""``gateway policy validate``: schema and semantic lint, each problem at file:line with a
severity, a stable code and a fix hint; exit codes for CI; JSON for tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.tools.lint import all_rules
from tests.policy.cliutil import GOOD, REPO, make_root, run_cli
from tests.support.server import new_key


def validate(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run in process with --format json; the exit code and the parsed report."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--config", str(config), "policy", "validate", "--format", "json", *args])
    return code, json.loads(out.getvalue())


def issues(report: dict[str, Any]) -> list[tuple[str, int, str, str]]:
    return [(Path(i["file"]).name, i["line"], i["severity"], i["code"]) for i in report["issues"]]


ANTHROPIC_ONLY = GOOD.replace("[gpt-test]", "[claude-test]") + "  endpoints: [messages]\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("access:", "acess:"),
            [
                ("triage.yaml", 1, "error", "schema.missing"),
                ("triage.yaml", 3, "error", "schema.unknown_key"),
            ],
        ),
        ("workflow: triage\n  owner: [", [("triage.yaml", 2, "error", "schema.yaml")]),
        (GOOD + "mode: audit\n", [("triage.yaml", 6, "error", "schema.invalid")]),
        (
            GOOD.replace("owner: ops@example.com\n", ""),
            [("triage.yaml", 1, "error", "workflow.no_owner")],
        ),
        (
            GOOD.replace("ops@example.com", '"  "'),
            [("triage.yaml", 2, "error", "workflow.no_owner")],
        ),
        (
            GOOD.replace("workflow: triage", "workflow: other"),
            [("triage.yaml", 1, "error", "workflow.file_name")],
        ),
        (
            GOOD.replace("[gpt-test]", "[gpt-tset]"),
            [("triage.yaml", 5, "error", "access.unknown_model")],
        ),
        (
            GOOD.replace("[agent]", "[agent, agnet]"),
            [("triage.yaml", 4, "error", "access.unknown_role")],
        ),
        (
            GOOD + "fallback:\n  models: [nope]\n",
            [("triage.yaml", 7, "error", "fallback.unknown_model")],
        ),
        # A model of the other API is translated, so it is tried like any other...
        (GOOD + "fallback:\n  models: [claude-test]\n", []),
        (ANTHROPIC_ONLY + "fallback:\n  models: [gpt-test]\n", []),
        # ...but only for a failure another model may cure.
        (
            GOOD + "fallback:\n  on: [blocked]\n  models: [claude-test]\n  message: sorry\n",
            [("triage.yaml", 7, "error", "fallback.unreachable_model")],
        ),
        (
            GOOD + "data:\n  entities: {EMAIL_ADRESS: mask}\n",
            [("triage.yaml", 7, "error", "data.unknown_entity")],
        ),
        (
            GOOD + "data:\n  entities: {PERSON: mask}\n",
            [("triage.yaml", 7, "error", "data.needs_ner")],
        ),
        (
            GOOD + "data:\n  custom: [{name: X_CODE, pattern: '(', action: block}]\n",
            [("triage.yaml", 7, "error", "data.bad_pattern")],
        ),
        (
            GOOD + "data:\n  entities: {EMAIL_ADDRESS: mask}\n  min_scores: {PHONE_NUMBER: 0.7}\n",
            [("triage.yaml", 8, "error", "data.min_score_unused")],
        ),
        (
            GOOD + "retention: {content: masked}\n",
            [("triage.yaml", 6, "error", "retention.masked_without_data")],
        ),
    ],
)
def test_each_problem_has_line_severity_code_and_hint(
    tmp_path: Path, text: str, expected: list[tuple[str, int, str, str]]
) -> None:
    config = make_root(tmp_path, {"triage.yaml": text})
    code, report = validate(config)
    assert issues(report) == expected
    assert all(i["hint"] and i["message"] for i in report["issues"])
    assert code == (1 if any(e[2] == "error" for e in expected) else 0)
    if code == 1:
        assert report["policies"] == {}


def test_clean_folder_and_the_samples(tmp_path: Path) -> None:
    config = make_root(tmp_path, {"triage.yaml": GOOD})
    code, report = validate(config, "--strict")
    assert (code, report["errors"], report["warnings"], report["issues"]) == (0, 0, 0, [])
    assert list(report["policies"]) == ["triage"]
    code, report = validate(REPO / "gateway.yaml", "--strict")
    assert code == 0, report["issues"]
    assert sorted(report["policies"]) == [
        "code_review",
        "coding_agent",
        "lead_triage",
        "support_reply",
    ]


def test_roles_without_auth_roles_are_checked_against_keys_and_only_warned(tmp_path: Path) -> None:
    config = make_root(
        tmp_path,
        {"triage.yaml": GOOD.replace("[agent]", "[agent, ops]")},
        auth={"api_keys_file": "keys.yaml"},
    )
    new_key(tmp_path / "keys.yaml", "alice", ["agent"])
    code, report = validate(config)
    assert code == 0
    assert issues(report) == [("triage.yaml", 4, "warning", "access.unknown_role")]
    assert "'ops'" in report["issues"][0]["message"]
    assert "auth.roles" in report["issues"][0]["hint"]
    code, _ = validate(config, "--strict")
    assert code == 2


def test_the_admin_role_is_always_known(tmp_path: Path) -> None:
    config = make_root(tmp_path, {"triage.yaml": GOOD.replace("[agent]", "[admin]")})
    assert validate(config, "--strict")[0] == 0


def test_every_file_and_problem_at_once_with_did_you_mean(tmp_path: Path) -> None:
    config = make_root(
        tmp_path,
        {
            "a.yaml": GOOD.replace("triage", "a").replace("[gpt-test]", "[gpt-tset]"),
            "b.yaml": GOOD.replace("triage", "b").replace("[agent]", "[agnet]"),
            "triage.yaml": GOOD,
        },
    )
    code, report = validate(config)
    assert code == 1
    assert issues(report) == [
        ("a.yaml", 5, "error", "access.unknown_model"),
        ("b.yaml", 4, "error", "access.unknown_role"),
    ]
    assert "did you mean 'gpt-test'?" in report["issues"][0]["hint"]
    assert "did you mean 'agent'?" in report["issues"][1]["hint"]


def test_duplicate_workflow(tmp_path: Path) -> None:
    config = make_root(tmp_path, {"triage.yaml": GOOD, "triage.yml": GOOD})
    code, report = validate(config)
    assert code == 1
    codes = {i[3] for i in issues(report)}
    assert "workflow.duplicate" in codes


def test_missing_folder_and_broken_config(tmp_path: Path) -> None:
    config = make_root(tmp_path, {})
    code, report = validate(config, str(tmp_path / "nope"))
    assert code == 1 and issues(report) == [("nope", 0, "error", "schema.no_folder")]
    config.write_text(config.read_text() + "listen: {hots: x}\n")
    code, report = validate(config)
    assert code == 1 and report["issues"][0]["code"] == "config.invalid"
    assert "did you mean 'host'" in report["issues"][0]["message"]


def test_text_output_and_exit_codes_from_a_real_process(tmp_path: Path) -> None:
    config = make_root(tmp_path, {"triage.yaml": GOOD.replace("[gpt-test]", "[gpt-tset]")})
    result = run_cli("--config", str(config), "policy", "validate")
    assert result.returncode == 1
    path = tmp_path / "policies" / "triage.yaml"
    assert f"{path}:5: access.models: unknown model 'gpt-tset'" in result.stderr
    assert "(error access.unknown_model)" in result.stderr
    assert "fix: did you mean 'gpt-test'?" in result.stderr
    assert "1 error(s), 0 warning(s)" in result.stderr
    config = make_root(tmp_path, {"triage.yaml": GOOD.replace("[agent]", "[agent, ops]")}, auth={})
    result = run_cli("--config", str(config), "policy", "validate")
    assert result.returncode == 0 and "ok  triage" in result.stdout
    assert "(warning access.unknown_role)" in result.stderr
    result = run_cli("--config", str(config), "policy", "validate", "--strict")
    assert result.returncode == 2


BUDGET = "  max_output_tokens: 100\nlimits:\n  budget: [{per: user, usd_per_day: 5}]\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + BUDGET, []),
        (GOOD.replace("[gpt-test]", "[gpt-test, mock-model]") + BUDGET,
         [("triage.yaml", 8, "error", "limits.unpriced_model")]),
        (GOOD + BUDGET + "fallback: {models: [mock-model]}\n",
         [("triage.yaml", 8, "error", "limits.unpriced_model")]),
        (GOOD + BUDGET.replace("  max_output_tokens: 100\n", ""),
         [("triage.yaml", 7, "error", "limits.budget_needs_ceiling")]),
        (GOOD.replace("[gpt-test]", "[mock-model]") + "limits:\n  rate: [{per: user, requests_per_minute: 5}]\n", []),
    ],
)  # fmt: skip
def test_budgets_need_prices_and_a_ceiling(
    tmp_path: Path, text: str, expected: list[tuple[str, int, str, str]]
) -> None:
    config = make_root(tmp_path, {"triage.yaml": text})
    code, report = validate(config)
    assert issues(report) == expected
    assert code == (1 if expected else 0)
    if expected:
        assert "mock-model" in report["issues"][0]["message"] or expected[0][3].endswith("ceiling")


def test_rules_are_found_in_every_rules_module() -> None:
    names = {f"{r.__module__.rsplit('.', 1)[-1]}.{r.__name__}" for r in all_rules()}
    assert {
        "access.unknown_model",
        "access.unknown_role",
        "budget.unpriced_model",
        "budget.budget_ceiling",
        "data.entities",
        "fallback.unreachable_model",
        "workflow.owner",
    } <= names


def test_candidates_are_linted_as_the_policies_they_may_become(tmp_path: Path) -> None:
    stricter = GOOD + "data:\n  entities: {EMAIL_ADDRESS: block}\n"
    config = make_root(tmp_path, {"triage.yaml": GOOD, "triage.candidate.yaml": stricter})
    code, report = validate(config, "--strict")
    assert (code, report["issues"]) == (0, [])
    assert list(report["policies"]) == list(report["candidates"]) == ["triage"]
    assert report["candidates"]["triage"]["file"].endswith("triage.candidate.yaml")
    broken = {
        "triage.yaml": GOOD,
        "triage.candidate.yaml": GOOD.replace("[gpt-test]", "[gpt-tset]"),
        "other.candidate.yaml": GOOD.replace("triage", "other"),
        "third.candidate.yaml": GOOD,
    }
    config = make_root(tmp_path, broken)
    code, report = validate(config)
    assert code == 1
    assert issues(report) == [
        ("other.candidate.yaml", 1, "error", "workflow.candidate_without_live"),
        ("third.candidate.yaml", 1, "error", "workflow.file_name"),
        ("triage.candidate.yaml", 1, "error", "workflow.duplicate"),  # third is triage's too
        ("triage.candidate.yaml", 5, "error", "access.unknown_model"),
    ]
    assert report["issues"][1]["hint"].startswith("rename the file to triage.candidate.yaml")
    assert list(report["policies"]) == ["triage"] and report["candidates"] == {}
