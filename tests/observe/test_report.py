"""``gateway report``: the owner's weekly report from the audit trail."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from gateway.cli import main
from gateway.tools.report import build_report, render_markdown
from tests.audit.conftest import record
from tests.observe.conftest import observed_config, start_observed


def test_report_of_a_workflow_from_the_audit_trail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, gw = start_observed(tmp_path, observed_config())
    try:
        for _ in range(3):
            assert gw.chat("triage", "plain").status_code == 200
        assert gw.chat("triage", "mail ann@example.com").status_code == 200
        assert gw.chat("triage", "about project zeus").status_code == 403
        assert gw.chat("notes", "hello").status_code == 200
    finally:
        server.stop()
    config = str(tmp_path / "gateway.yaml")
    assert main(["--config", config, "report", "--workflow", "triage", "--format", "json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    triage = report["workflows"]["triage"]
    assert list(report["workflows"]) == ["triage"]
    assert triage["requests"] == 5
    assert triage["decisions"] == {"allow": 3, "masked": 1, "deny": 1}
    assert triage["top_reasons"]["boundary.blocked_entity"] == 1
    assert triage["entities"] == {"block": {"DENY_TERM": 1}, "mask": {"EMAIL_ADDRESS": 1}}
    assert triage["cost_usd"] > 0 and triage["latency_ms"]["p95"] > 0
    assert "ann@example.com" not in str(report)
    assert main(["--config", config, "report", "--since", "1h"]) == 0
    text = capsys.readouterr().out
    assert "# Workflow notes" in text and "# Workflow triage" in text


def test_drifted_signals_and_new_fingerprints_against_the_previous_period() -> None:
    now = time.time()
    week = 7 * 86400
    before = [
        record(i, time=now - week - 1000 + i, fingerprints={"instructions": "aaa"})
        for i in range(300)
    ]
    current = [
        record(
            1000 + i,
            time=now - 1000 + i,
            decision="deny" if i % 4 == 0 else "allow",
            reasons=["boundary.blocked_entity"] if i % 4 == 0 else [],
            fingerprints={"instructions": "bbb" if i > 150 else "aaa"},
        )
        for i in range(300)
    ]
    report = build_report("chat_app", now - week, now, current, before, {}, {}, 100)
    section = report["workflows"]["chat_app"]
    drifted = {d["signal"]: d for d in section["drifted"]}
    assert drifted["block_rate"]["now"] == 0.25 and drifted["block_rate"]["before"] == 0
    assert section["new_fingerprints"] == [{"kind": "instructions", "fingerprint": "bbb"}]
    assert section["previous"]["requests"] == 300
    text = render_markdown(report)
    assert "| block_rate | 0.25 | 0.0 |" in text


def test_events_in_the_trail_are_not_requests() -> None:
    """Review actions, sign-ins and rollout events share the chain: none is counted, and a
    sign-in (no workflow) makes no "none" workflow."""
    now = time.time()
    requests = [record(i, time=now - 100 + i) for i in range(4)]
    events = [
        record(100, time=now - 50, endpoint="review", decision="review"),
        record(101, time=now - 40, endpoint="rollout", decision="rollout"),
        record(102, time=now - 30, endpoint="console", decision="console", workflow=None),
        record(103, time=now - 20, endpoint="reviews", decision="allow"),
    ]
    report = build_report(None, now - 3600, now, requests + events, [], {}, {}, 10)
    assert list(report["workflows"]) == sorted({r.workflow or "none" for r in requests})
    assert sum(w["requests"] for w in report["workflows"].values()) == 4
