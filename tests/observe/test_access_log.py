"""One access line per request: what was decided, never a credential, a value or a prompt."""

from __future__ import annotations

import logging

import httpx
import orjson
import pytest

from gateway.observe.logs import ACCESS_LOGGER, JsonFormatter
from tests.observe.conftest import Observed


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


def test_one_line_per_request_without_secrets(
    observed: Observed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    secret_text = "mail ann@example.com about the merger"
    response = httpx.post(
        f"{observed.url}/w/triage/v1/chat/completions?token=sekrit-query",
        headers={"authorization": f"Bearer {observed.key}", "user-agent": "agent-007"},
        json={"model": "made-up-model-xyz", "messages": [{"role": "user", "content": secret_text}]},
    )
    assert response.status_code == 403
    ok = observed.chat("triage", secret_text)
    assert ok.status_code == 200
    lines = _lines(caplog)
    assert len(lines) == 2
    refused, served = (r.access for r in lines)
    assert refused["path"] == "/w/{workflow}/v1/chat/completions"
    assert refused["method"] == "POST"
    assert refused["workflow"] == "triage"
    assert refused["decision"] == "deny"
    assert refused["reasons"] == ["access.model_denied"]
    assert refused["status"] == 403
    assert refused["model"] == "other"  # a made-up model name is never written
    assert refused["request_id"] == response.headers["x-request-id"]
    assert served["decision"] == "masked"
    assert served["policy_version"].startswith("sha256:")
    assert served["tokens_in"] and served["tokens_out"]
    assert served["latency_ms"] > 0
    for record in lines:
        text = record.getMessage() + orjson.dumps(record.access).decode()
        for leaked in (observed.key, "ann@example.com", "merger", "sekrit", "agent-007", "xyz"):
            assert leaked not in text


def test_unknown_workflows_and_paths_read_other(
    observed: Observed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    assert observed.chat("no-such-flow", "hi").status_code == 404
    long_path = "/x/" + "a" * 300
    assert httpx.get(f"{observed.url}{long_path}?q=1").status_code == 404
    unknown, route = (r.access for r in _lines(caplog))
    assert unknown["workflow"] == "other"
    assert unknown["reasons"] == ["policy.unknown_workflow"]
    assert route["path"] == long_path[:64]
    assert route["reasons"] == ["request.unknown_route"]


def test_json_format_is_one_object_per_line() -> None:
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, "%s", ("x",), None)
    record.access = {"request_id": "r1", "decision": "allow", "status": 200}
    line = JsonFormatter().format(record)
    parsed = orjson.loads(line)
    assert parsed["request_id"] == "r1" and parsed["status"] == 200
    assert parsed["level"] == "info" and parsed["time"].endswith("Z")
    plain = logging.LogRecord("gateway", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    assert orjson.loads(JsonFormatter().format(plain))["message"] == "a b"
