"""``gateway eval``: an evaluation set through the real pipeline, against the fake upstream
(real wire formats) or recorded answers; each expectation kind; runs recorded, and a drop
against the last run of the same set named as a regression."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.policy.cliutil import REPO, run_cli
from tests.tools.lifecycle import EMAIL, Folder, chat_policy

pytestmark = pytest.mark.usefixtures("upstream")


def jsonl(*cases: dict[str, Any]) -> str:
    return "".join(orjson.dumps(c).decode() + "\n" for c in cases)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


ANSWER = '{"ticket": {"category": "billing", "priority": 2}, "tags": ["refund"]}'
SCHEMA = {
    "type": "object",
    "required": ["ticket"],
    "properties": {"ticket": {"type": "object", "required": ["category"]}},
}

SET = jsonl(
    {"name": "echoed", "messages": user("hello there"),
     "expect": {"text": "echo: hello there", "decision": "allow", "fallback": "none"}},
    {"name": "masked on the way out", "messages": user(EMAIL),
     "expect": {"decision": "transform", "regex": r"<EMAIL_ADDRESS_\d>", "contains": ["order"]}},
    {"name": "json fields", "messages": user("classify"), "answer": ANSWER,
     "expect": {"json": {"ticket.category": "billing", "tags.0": "refund"}, "schema": SCHEMA}},
    {"name": "anthropic too", "api": "anthropic", "model": "claude-test",
     "messages": user("bonjour"), "expect": {"regex": "^echo: bonjour$"}},
)  # fmt: skip


def _evaluating(folder: Folder, target: float = 1.0, cases: str = SET) -> None:
    folder.write("evals/chat_app.jsonl", cases)
    evaluation = {"set": "evals/chat_app.jsonl", "metric": "pass_rate", "target": target}
    folder.write("chat_app.yaml", chat_policy(evaluation=evaluation))


def _json(folder: Folder, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = folder.cli("eval", "chat_app", "--format", "json", *args)
    return code, orjson.loads(capsys.readouterr().out)


def test_against_the_configured_upstream(
    folder: Folder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Online, "json fields" gets the upstream's echo, not the recorded answer: it fails.
    _evaluating(folder, target=0.75)
    code, out = _json(folder, capsys)
    assert code == 0, out
    assert (out["passed"], out["failed"], out["value"], out["met"]) == (3, 1, 0.75, True)
    [failure] = out["failures"]
    assert failure["case"] == "json fields"
    assert failure["failures"] == ["json: the answer is not JSON: 'echo: classify'"]

    # Offline, the recorded answer is played back; the others get the mock's quote, which
    # is no "echo: ..." (the masked case holds either way).
    code, out = _json(folder, capsys, "--offline")
    assert code == 1, out
    assert {f["case"] for f in out["failures"]} == {"echoed", "anthropic too"}
    code, out = _json(folder, capsys, "--repeat", "3")
    assert (out["passed"], out["failed"]) == (9, 3)

    runs = asyncio.run(folder.history().eval_runs("chat_app"))
    assert [(r.offline, r.passed, r.failed) for r in runs] == [
        (False, 9, 3), (True, 2, 2), (False, 3, 1),
    ]  # fmt: skip
    assert runs[0].version == folder.version() and runs[0].failing == ("json fields",)


def test_each_expectation_reports_what_it_saw(
    sqlite_folder: Folder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = jsonl(
        {"name": "exact", "messages": user("a"), "answer": "b", "expect": {"text": "a"}},
        {"name": "regex", "messages": user("a"), "answer": "b", "expect": {"regex": "^a$"}},
        {"name": "field", "messages": user("a"), "answer": ANSWER,
         "expect": {"json": {"ticket.priority": 1, "ticket.owner": "x"}}},
        {"name": "schema", "messages": user("a"), "answer": '{"x": 1}', "expect": {"schema": SCHEMA}},
        {"name": "decision", "messages": user(EMAIL), "answer": "ok", "expect": {"decision": "allow"}},
        {"name": "fallback", "messages": user("a"), "answer": "ok", "expect": {"fallback": "model"}},
    )  # fmt: skip
    _evaluating(sqlite_folder, cases=wrong)
    code, out = _json(sqlite_folder, capsys, "--offline")
    assert code == 1 and out["value"] == 0.0
    seen = {f["case"]: f["failures"] for f in out["failures"]}
    assert seen == {
        "exact": ["text: expected 'a', got 'b'"],
        "regex": ["regex: '^a$' not found in 'b'"],
        "field": ["json: ticket.priority expected 1, got 2", "json: ticket.owner missing"],
        "schema": ["schema: data must contain ['ticket'] properties"],
        "decision": ["decision: expected allow, got transform"],
        "fallback": ["fallback: expected model, got none"],
    }


def test_a_drop_against_the_last_run_is_a_regression(
    sqlite_folder: Folder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = sqlite_folder
    _evaluating(folder, target=0.5)
    assert folder.cli("eval", "chat_app") == 0
    # The same set, a stricter policy: e-mail now blocked, so the masking case fails.
    evaluation = {"set": "evals/chat_app.jsonl", "target": 0.5}
    folder.write("chat_app.yaml", chat_policy("block", evaluation=evaluation))
    capsys.readouterr()
    assert folder.cli("eval", "chat_app") == 1  # still above target, but worse
    out = capsys.readouterr().out
    assert "REGRESSION: pass_rate 0.500 < 0.750 in the last run" in out
    assert "newly failing: masked on the way out" in out
    assert "FAIL  line 2  masked on the way out  decision deny" in out

    # An edited set starts a new series: nothing to compare with.
    _evaluating(folder, target=0.5, cases=SET + jsonl({"name": "more", "messages": user("x"),
                                                       "expect": {"regex": "x"}}))  # fmt: skip
    capsys.readouterr()
    assert folder.cli("eval", "chat_app") == 0
    assert "REGRESSION" not in capsys.readouterr().out


def test_candidate_model_override_and_unusable_input(
    sqlite_folder: Folder,
    capsys: pytest.CaptureFixture[str],
    upstream: FakeUpstream,
) -> None:
    folder = sqlite_folder
    _evaluating(folder, target=0.5)
    folder.write("chat_app.candidate.yaml", chat_policy("block"))  # no evaluation of its own
    code, out = _json(folder, capsys, "--candidate")
    assert code == 0 and out["value"] == 0.5  # held to live's set and target
    assert out["candidate"] is True and out["version"] != folder.version()
    assert {f["case"] for f in out["failures"]} == {"json fields", "masked on the way out"}
    before = len(upstream.requests_for("claude-up"))
    _, out = _json(folder, capsys, "--model", "claude-test")
    assert out["model"] == "claude-test" and out["value"] == 0.75
    assert len(upstream.requests_for("claude-up")) == before + 4  # every case went there
    assert folder.cli("eval", "chat_app", "--model", "gpt-nope") == 2

    folder.write("evals/chat_app.jsonl", '{"name": "x", "messages": []}\nnot json\n')
    capsys.readouterr()
    assert folder.cli("eval", "chat_app") == 2
    err = capsys.readouterr().err
    assert "chat_app.jsonl:1: messages: List should have at least 1 item" in err
    assert "chat_app.jsonl:1: expect: Field required" in err
    assert "chat_app.jsonl:2: not JSON" in err


def test_the_sample_set_passes_on_the_mock() -> None:
    done = run_cli("eval", "support_reply", "--offline", "--format", "json", cwd=REPO,
                   env={"GATEWAY_AUDIT_DB": "/tmp/gateway-sample-eval.db"})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = orjson.loads(done.stdout)
    assert out["met"] and out["failed"] == 0 and out["passed"] >= 5
