"""``gateway policy test``: cases run through the real pipeline offline, a pass/fail table,
exit 1 on a failure or a broken test file (named at file:line)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from gateway.cli import main
from tests.policy.cliutil import GOOD, make_root, run_cli

# triage: gpt-test is served by an openai-type provider at 127.0.0.1:9 (nothing listens):
# a case that passes proves nothing was sent over the network.
POLICY = GOOD.replace("[gpt-test]", "[gpt-test, claude-test]") + (
    "data:\n  entities: {EMAIL_ADDRESS: mask, CREDIT_CARD: block}\n"
)
CASE = """\
workflow: triage
cases:
  - name: masked
    principal: {subject: ann, roles: [agent]}
    request:
      model: gpt-test
      messages: [{role: user, content: "mail ann@corp.example.com"}]
    expect:
      decision: transform
      reasons: [boundary.masked]
      upstream_text: "mail <EMAIL_ADDRESS_1>"
      client_text: "[mock gpt-up] You said: mail <EMAIL_ADDRESS_1>"
"""


def run(config: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(config), "policy", "test", *args])
    return code, out.getvalue(), err.getvalue()


def results(config: Path) -> tuple[int, list[dict[str, Any]]]:
    code, out, _ = run(config, "--format", "json")
    return code, json.loads(out) if out else []


def test_sample_policies_pass_their_tests() -> None:
    """The shipped cases, through the real command: `make test` runs them here."""
    result = run_cli("policy", "test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout and " FAIL " not in result.stdout
    for name in ("lead_triage", "support_reply", "code_review"):
        assert f"policies/tests/{name}.yaml:" in result.stdout
    assert result.stdout.count("pass  ") >= 15


def test_a_passing_case(tmp_path: Path) -> None:
    config = make_root(tmp_path, {"triage.yaml": POLICY, "tests/triage.yaml": CASE})
    code, found = results(config)
    assert code == 0
    assert [(r["case"], r["passed"], r["line"]) for r in found] == [("masked", True, 3)]
    assert found[0]["observed"] == {
        "decision": "transform",
        "reasons": ["boundary.masked"],
        "status": 200,
        "upstream_text": "mail <EMAIL_ADDRESS_1>",
        "client_text": "[mock gpt-up] You said: mail <EMAIL_ADDRESS_1>",
    }


def test_every_expectation_can_fail(tmp_path: Path) -> None:
    wrong = (
        CASE.replace("decision: transform", "decision: allow")
        .replace("[boundary.masked]", "[]")
        .replace(
            'upstream_text: "mail <EMAIL_ADDRESS_1>"', 'upstream_text: "mail ann@corp.example.com"'
        )
        .replace("You said: mail <EMAIL_ADDRESS_1>", "You said: mail ann@corp.example.com")
        + "      status: 201\n"
    )
    config = make_root(tmp_path, {"triage.yaml": POLICY, "tests/triage.yaml": wrong})
    code, out, _ = run(config)
    assert code == 1
    assert "FAIL" in out and "policies/tests/triage.yaml:3" in out
    assert "decision: expected allow, got transform" in out
    assert "reasons: expected [], got ['boundary.masked']" in out
    assert "status: expected 201, got 200" in out
    assert (
        "upstream_text: expected 'mail ann@corp.example.com', got 'mail <EMAIL_ADDRESS_1>'" in out
    )
    assert "client_text: expected '[mock gpt-up] You said: mail ann@corp.example.com'" in out
    assert "0 passed, 1 failed" in out


def test_contains_excludes_and_nothing_sent(tmp_path: Path) -> None:
    cases = (
        CASE
        + """\
  - name: blocked
    principal: {subject: ann, roles: [agent]}
    request:
      api: anthropic
      model: claude-test
      stream: true
      messages: [{role: user, content: "card 4111 1111 1111 1111"}]
    expect:
      decision: deny
      reasons: [boundary.blocked_entity]
      status: 403
      upstream_text: null
      client_text: {contains: [CREDIT_CARD x1], excludes: ["4111"]}
  - name: streamed with a canned answer
    principal: {subject: ann, roles: [agent]}
    request:
      api: anthropic
      model: claude-test
      stream: true
      messages: [{role: user, content: "hello"}]
    upstream_answer: "write to bob@corp.example.com today"
    expect:
      decision: transform
      upstream_text: "hello"
      client_text: "write to <EMAIL_ADDRESS_1> today"
  - name: wrong expectations of the same kinds
    principal: {subject: ann, roles: [agent]}
    request:
      model: gpt-test
      messages: [{role: user, content: "card 4111 1111 1111 1111"}]
    expect:
      decision: deny
      upstream_text: {contains: [card]}
      client_text: {contains: [nothing like this], excludes: [CREDIT_CARD]}
"""
    )
    config = make_root(tmp_path, {"triage.yaml": POLICY, "tests/triage.yaml": cases})
    code, found = results(config)
    assert code == 1
    assert [r["passed"] for r in found] == [True, True, True, False]
    assert found[3]["failures"] == [
        "upstream_text: expected text containing ['card'], got none",
        "client_text: 'The request contains data this workflow may not send: CREDIT_CARD x1.' "
        "does not contain 'nothing like this'",
        "client_text: 'The request contains data this workflow may not send: CREDIT_CARD x1.' "
        "contains 'CREDIT_CARD'",
    ]


def test_principal_roles_and_team_reach_access_rules(tmp_path: Path) -> None:
    policy = POLICY.replace("  roles: [agent]\n", "  roles: [agent]\n  teams: [emea]\n")
    cases = """\
workflow: triage
cases:
  - name: no team
    principal: {subject: ann, roles: [agent]}
    request: {model: gpt-test, messages: [{role: user, content: hi}]}
    expect: {decision: deny, reasons: [access.team_denied], upstream_text: null}
  - name: right team
    principal: {subject: ann, roles: [agent], team: emea}
    request: {model: gpt-test, messages: [{role: user, content: hi}]}
    expect: {decision: allow, reasons: [], upstream_text: hi}
  - name: no roles at all
    principal: {subject: ann}
    request: {model: gpt-test, messages: [{role: user, content: hi}]}
    expect: {decision: deny, reasons: [access.role_denied]}
"""
    config = make_root(tmp_path, {"triage.yaml": policy, "tests/t.yaml": cases})
    code, found = results(config)
    assert code == 0, found


def test_broken_test_files_are_named_at_file_and_line(tmp_path: Path) -> None:
    broken = {
        "tests/a.yaml": CASE.replace("decision: transform", "decision: maybe"),
        "tests/b.yaml": CASE.replace("workflow: triage", "workflow: nope"),
        "tests/c.yaml": CASE.replace("workflow: triage\n", ""),
        "tests/d.yaml": CASE.replace("    principal:", "    principle:"),
        "tests/e.yaml": "cases: [\n",
        "tests/f.yaml": CASE.replace("reasons: [boundary.masked]", "reasons: [boundary.maksed]"),
    }
    config = make_root(tmp_path, {"triage.yaml": POLICY, **broken})
    code, out, err = run(config)
    assert code == 1 and out == ""
    tests = tmp_path / "policies" / "tests"
    assert f"{tests / 'a.yaml'}:9: cases.0.expect.decision: Input should be" in err
    assert f"{tests / 'b.yaml'}:1: unknown workflow 'nope' (policies: triage)" in err
    assert f"{tests / 'c.yaml'}:2: cases[0]: no workflow" in err
    assert f"{tests / 'd.yaml'}:3: cases.0.principal: Field required" in err
    assert f"{tests / 'd.yaml'}:4: cases.0.principle: unknown key; did you mean 'principal'?" in err
    assert f"{tests / 'e.yaml'}:2: invalid YAML" in err
    assert (
        f"{tests / 'f.yaml'}:10: cases.0.expect.reasons: Value error, unknown reason code "
        "'boundary.maksed' (did you mean 'boundary.masked'?)"
    ) in err
    assert "no case was run" in err


def test_no_cases_or_a_broken_policy_fail(tmp_path: Path) -> None:
    config = make_root(tmp_path, {"triage.yaml": POLICY})
    code, _, err = run(config)
    assert code == 1 and "no test cases in" in err
    (tmp_path / "policies" / "triage.yaml").write_text(POLICY.replace("claude-test]", "claude-x]"))
    (tmp_path / "policies" / "tests").mkdir()
    (tmp_path / "policies" / "tests" / "t.yaml").write_text(CASE)
    code, _, err = run(config)
    assert code == 1 and "unknown model 'claude-x'" in err


def test_cases_name_every_surface(tmp_path: Path) -> None:
    """``api`` names any registered surface: the Responses API and token counting run
    through the same pipeline as chat (embeddings: the sample coding_agent cases)."""
    cases = """\
workflow: triage
cases:
  - name: responses
    principal: {subject: ann, roles: [agent]}
    request: {api: responses, model: gpt-test, system: be brief, input: "mail ann@corp.example.com"}
    expect:
      decision: transform
      reasons: [boundary.masked]
      upstream_text: "be brief\\nmail <EMAIL_ADDRESS_1>"
      client_text: "[mock gpt-up] You said: mail <EMAIL_ADDRESS_1>"
  - name: responses streamed from messages
    principal: {subject: ann, roles: [agent]}
    request:
      api: responses
      model: gpt-test
      stream: true
      messages: [{role: user, content: "card 4111 1111 1111 1111"}]
    expect: {decision: deny, reasons: [boundary.blocked_entity], upstream_text: null}
  - name: count tokens
    principal: {subject: ann, roles: [agent]}
    request: {api: count_tokens, model: claude-test, messages: [{role: user, content: "mail ann@corp.example.com"}]}
    expect: {decision: transform, reasons: [boundary.masked], upstream_text: "mail <EMAIL_ADDRESS_1>"}
"""
    config = make_root(tmp_path, {"triage.yaml": POLICY, "tests/t.yaml": cases})
    code, found = results(config)
    assert code == 0, found
    assert [r["passed"] for r in found] == [True, True, True]


def test_a_case_in_an_unknown_api_or_the_wrong_shape_is_a_broken_file(tmp_path: Path) -> None:
    request = "    request:\n      model: gpt-test\n"
    broken = {
        "tests/a.yaml": CASE.replace(request, request + "      api: respones\n"),
        "tests/b.yaml": CASE.replace(request, request + "      api: embeddings\n"),
        "tests/c.yaml": CASE.replace(request, request + "      input: hi\n"),
    }
    config = make_root(tmp_path, {"triage.yaml": POLICY, **broken})
    code, out, err = run(config)
    assert code == 1 and out == ""
    tests = tmp_path / "policies" / "tests"
    assert (
        f"{tests / 'a.yaml'}:" in err
        and "unknown api 'respones' (did you mean 'responses'?)" in err
    )
    assert f"{tests / 'b.yaml'}:" in err and "an embeddings request takes 'input'" in err
    assert f"{tests / 'c.yaml'}:" in err and "a openai request takes 'messages' (no 'input')" in err
