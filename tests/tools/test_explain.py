"""``gateway policy explain``: each step's decision and the rule behind it, from the real
pipeline run offline (nothing sent), never a detected value."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.config import load_config
from gateway.policy.loader import load_policies
from gateway.tools.cases import CasePrincipal, CaseRequest
from gateway.tools.explain import explain as explain_steps
from tests.fakes.upstream import FakeUpstream
from tests.policy.cliutil import GOOD, make_root, run_cli
from tests.support.placeholders import OFFLINE_TOKEN_KEY, keyed

POLICY = GOOD.replace("[gpt-test]", "[gpt-test, claude-test]") + (
    "data:\n"
    "  entities: {EMAIL_ADDRESS: tokenize, PHONE_NUMBER: mask, CREDIT_CARD: block}\n"
    "  custom: [{name: TICKET, pattern: 'TCK-[0-9]{4}', action: redact}]\n"
)
MESSAGE = "Ticket TCK-1234 from ann@corp.example.com, card none"


def explain(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--config", str(config), "policy", "explain", "--format", "json", *args])
    return code, json.loads(out.getvalue()) if out.getvalue() else {}


def steps(report: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(s["step"], s["outcome"], s["code"]) for s in report["steps"]]


@pytest.fixture
def root(tmp_path: Path, upstream: FakeUpstream) -> Path:
    """Real HTTP upstreams: explain must send them nothing."""
    providers = {
        "openai": {"type": "openai", "base_url": f"{upstream.base_url}/v1", "api_key_env": "K1"},
        "anthropic": {"type": "anthropic", "base_url": upstream.base_url, "api_key_env": "K2"},
        "demo": {"type": "mock"},
    }
    return make_root(tmp_path, {"triage.yaml": POLICY}, providers=providers)


WHO = ("--workflow", "triage", "--subject", "ann", "--roles", "agent")


def test_masking_with_findings_rules_actions_and_the_text_that_would_leave(
    root: Path, upstream: FakeUpstream
) -> None:
    code, report = explain(root, *WHO, "--message", MESSAGE)
    assert code == 0
    assert steps(report) == [
        ("authenticate", "allow", None),
        ("resolve_policy", "allow", None),
        ("access", "allow", None),
        ("read_request", "allow", None),
        ("access", "allow", None),
        ("limits", "allow", None),
        ("boundary", "transform", "boundary.masked"),
        ("forward", "allow", None),
        ("inspect_answer", "allow", None),  # the mock's quote, its token restored
    ]
    assert report["decision"] == "transform" and report["reasons"] == ["boundary.masked"]
    assert [(f["entity"], f["rule"], f["action"], f["preview"]) for f in report["findings"]] == [
        ("TICKET", "custom.TICKET", "redact", "T******4"),
        ("EMAIL_ADDRESS", "email", "tokenize", "an****************om"),
    ]
    assert (
        MESSAGE[slice(report["findings"][0]["start"], report["findings"][0]["end"])] == "TCK-1234"
    )
    [sent] = report["sent"]
    assert sent.startswith("Ticket [REDACTED] from <EMAIL_ADDRESS#") and sent.endswith(
        ">, card none"
    )
    rules = {s["step"]: s["rule"] for s in report["steps"]}
    assert rules["boundary"] == "data.entities: EMAIL_ADDRESS x1 tokenize, TICKET x1 redact"
    assert "not sent" in rules["forward"] and "gpt-test (provider openai)" in rules["forward"]
    assert upstream.received == []
    assert not (root.parent / "audit.db").exists()


def test_a_blocked_entity_stops_at_the_boundary(root: Path) -> None:
    code, report = explain(root, *WHO, "--message", "pay with 4111 1111 1111 1111")
    assert code == 0
    assert steps(report)[-1] == ("boundary", "deny", "boundary.blocked_entity")
    assert report["sent"] is None and report["decision"] == "deny"
    assert [(f["entity"], f["action"]) for f in report["findings"]] == [("CREDIT_CARD", "block")]
    assert "CREDIT_CARD x1 block" in report["steps"][-1]["rule"]


@pytest.mark.parametrize(
    ("args", "last", "rule"),
    [
        (("--roles", "ops"), ("access", "deny", "access.role_denied"),
         "access.roles needs one of [agent]; caller has [ops]"),
        (("--model", "mock-model"), ("access", "deny", "access.model_denied"),
         "This workflow does not allow model 'mock-model' (allowed: gpt-test, claude-test)."),
        (("--workflow", "nope"), ("resolve_policy", "deny", "policy.unknown_workflow"),
         "no policy defines workflow 'nope' (loaded: triage)"),
    ],
)  # fmt: skip
def test_refusals_name_their_rule(
    root: Path, args: tuple[str, ...], last: tuple[str, str, str], rule: str
) -> None:
    code, report = explain(root, *WHO, *args, "--message", "hello")
    assert code == 0
    assert steps(report)[-1] == last
    assert report["steps"][-1]["rule"] == rule
    assert report["decision"] == "deny"


def test_the_model_picks_its_api(root: Path) -> None:
    _, report = explain(root, *WHO, "--model", "claude-test", "--message", "hello")
    assert report["steps"][3]["rule"] == "anthropic_messages request, model claude-test"
    assert report["decision"] == "allow" and report["sent"] == ["hello"]
    # Asked in the other API, the same model is reached through translation.
    _, report = explain(root, *WHO, "--model", "claude-test", "--api", "openai", "--message", "hi")
    assert report["steps"][3]["rule"] == "openai_chat request, model claude-test"
    assert report["decision"] == "allow" and report["sent"] == ["hi"]


def test_team_rule_and_shadow_mode(tmp_path: Path) -> None:
    policy = POLICY.replace("  roles: [agent]\n", "  roles: [agent]\n  teams: [emea]\n")
    config = make_root(tmp_path, {"triage.yaml": policy + "mode: shadow\n"})
    _, report = explain(config, *WHO, "--message", "hi")
    assert steps(report)[-1] == ("access", "deny", "access.team_denied")
    assert report["steps"][-1]["rule"] == (
        "access.roles: caller has agent; access.teams does not list (no team); "
        "access.endpoints includes chat"
    )
    _, report = explain(config, *WHO, "--team", "emea", "--message", "card 4111 1111 1111 1111")
    boundary = next(s for s in report["steps"] if s["step"] == "boundary")
    assert (boundary["outcome"], boundary["code"]) == ("allow", "boundary.would_block")
    assert boundary["rule"].endswith("(shadow mode: traffic passes unchanged)")
    assert report["sent"] == ["card 41***************11"]  # sent raw, never printed


def test_without_a_data_section_nothing_is_inspected(tmp_path: Path) -> None:
    config = make_root(tmp_path, {"triage.yaml": GOOD})
    _, report = explain(config, *WHO, "--message", "ann@corp.example.com")
    assert next(s for s in report["steps"] if s["step"] == "boundary") == {
        "step": "boundary",
        "outcome": "allow",
        "code": None,
        "rule": "no data section: nothing is inspected",
    }
    assert report["sent"] == ["ann@corp.example.com"] and report["findings"] == []


def test_text_table_from_a_real_process(tmp_path: Path) -> None:
    config = make_root(tmp_path, {"triage.yaml": POLICY})
    result = run_cli("--config", str(config), "policy", "explain", *WHO, "--message", MESSAGE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:3] == ["boundary", "transform", "boundary.masked"] for line in lines)
    assert any(line.split()[2:5] == ["TICKET", "custom.TICKET", "0.80"] for line in lines)
    assert "text as it would leave" in result.stdout
    assert lines[-1] == "decision: transform (boundary.masked)"


def test_a_broken_policy_folder_exits_1(tmp_path: Path) -> None:
    config = make_root(tmp_path, {"triage.yaml": GOOD.replace("models:", "modles:")})
    result = run_cli("--config", str(config), "policy", "explain", *WHO, "--message", "x")
    assert result.returncode == 1
    assert "triage.yaml:5: access.modles: unknown key" in result.stderr


def test_an_answer_is_inspected_with_tokens_restored(root: Path) -> None:
    _, asked = explain(root, *WHO, "--message", "write to ann@corp.example.com")
    [sent] = asked["sent"]
    token = sent.removeprefix("write to ")
    answer = f"Dear {token}, card 4111 1111 1111 1111 is fine"
    _, report = explain(
        root, *WHO, "--message", "write to ann@corp.example.com", "--answer", answer
    )
    assert steps(report)[-1] == ("inspect_answer", "deny", "boundary.blocked_output")
    assert report["answer"] is None and report["decision"] == "deny"
    answer = f"Dear {token}, call +44 20 7946 0958"
    _, report = explain(
        root, *WHO, "--message", "write to ann@corp.example.com", "--answer", answer
    )
    assert report["steps"][-1] == {
        "step": "inspect_answer",
        "outcome": "transform",
        "code": "boundary.masked",
        "rule": "answer: PHONE_NUMBER x1 mask",
    }
    phone = keyed("triage", "PHONE_NUMBER", "+44 20 7946 0958", OFFLINE_TOKEN_KEY)
    assert report["answer"] == f"Dear an****************om, call {phone}"


def test_limits_are_counted_from_empty(tmp_path: Path) -> None:
    limits = (
        "  max_output_tokens: 100\n"
        "limits:\n"
        "  rate: [{per: user, requests_per_minute: 1}]\n"
        "  budget: [{per: workflow, usd_per_day: 2.5}]\n"
    )
    config = make_root(tmp_path, {"triage.yaml": GOOD + limits})
    for _ in range(2):  # one request a minute: each explain starts from empty counters
        _, report = explain(config, *WHO, "--message", "hi")
        limit = next(s for s in report["steps"] if s["step"] == "limits")
        assert limit == {
            "step": "limits",
            "outcome": "allow",
            "code": None,
            "rule": "rate per user: 1 requests/min; budget per workflow: $2.5/day "
            "(counters start empty: explain keeps none, $0.000221 reserved)",
        }


async def test_the_forward_rule_names_the_chain_each_provider_serves(tmp_path: Path) -> None:
    """Called as a library: the providers answer in either API (translated), so a model asked
    in the other API is reached all the same."""
    config = load_config(make_root(tmp_path, {"triage.yaml": POLICY}))
    policies = load_policies(tmp_path / "policies", config.models)
    caller = CasePrincipal(subject="ann", roles=("agent",))
    hello = [{"role": "user", "content": "hello"}]
    for api in ("openai", "anthropic"):
        request = CaseRequest(api=api, model="claude-test", messages=hello)
        report = await explain_steps(config, policies, "triage", caller, request)
        forward = next(s for s in report.steps if s.step == "forward")
        assert forward.rule == "not sent (explain); would try claude-test (provider anthropic)"
        assert (report.decision, report.status, report.sent) == ("allow", 200, ["hello"])
