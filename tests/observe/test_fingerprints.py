"""Keyed fingerprints of the instructions and tools as they left: in the audit record, counted
per workflow, and a new one reported; never the text."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.observe.conftest import Observed, observed_config, start_observed, value

TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "Find a lead."}}]


def _send(gw: Observed, system: str, tools: list[Any] | None = None) -> httpx.Response:
    body: dict[str, Any] = {
        "model": "mock-model",
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": "hi"}],
    }
    if tools:
        body["tools"] = tools
    response = httpx.post(
        f"{gw.url}/w/notes/v1/chat/completions",
        headers={"authorization": f"Bearer {gw.key}"},
        json=body,
    )
    assert response.status_code == 200, response.text
    return response


def _record(root: Path, request_id: str) -> dict[str, Any]:
    with sqlite3.connect(root / "audit.db") as db:
        (body,) = db.execute(
            "SELECT body FROM audit_records WHERE request_id = ?", (request_id,)
        ).fetchone()
    return dict(orjson.loads(body))


def test_fingerprints_are_recorded_counted_and_new_ones_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    key_env = {"GATEWAY_FINGERPRINT_KEY": "k" * 40}
    server, gw = start_observed(tmp_path, observed_config(), key_env)
    try:
        first = _send(gw, "You triage leads. Be brief.", TOOLS)
        again = _send(gw, "You triage leads. Be brief.", TOOLS)
        changed = _send(gw, "You triage leads. Be thorough.", TOOLS)
        a, b, c = (_record(tmp_path, r.headers["x-request-id"]) for r in (first, again, changed))
        assert a["fingerprints"] == b["fingerprints"]
        assert set(a["fingerprints"]) == {"instructions", "tools"}
        assert c["fingerprints"]["tools"] == a["fingerprints"]["tools"]
        assert c["fingerprints"]["instructions"] != a["fingerprints"]["instructions"]
        scraped = gw.scrape()
        assert (
            value(scraped, "gateway_new_fingerprints_total", workflow="notes", kind="instructions")
            == 2
        )
        assert value(scraped, "gateway_new_fingerprints_total", workflow="notes", kind="tools") == 1
        fp = a["fingerprints"]["instructions"]
        assert (
            value(scraped, "gateway_fingerprint_requests_total", workflow="notes", fingerprint=fp)
            == 2
        )
        events = [r.access for r in caplog.records if getattr(r, "access", {}).get("event")]
        assert [e["kind"] for e in events] == ["instructions", "tools", "instructions"]
        text = str(events) + str(scraped)
        assert "triage leads" not in text and "Find a lead" not in text
    finally:
        server.stop()
    # keyed: another key gives other fingerprints for the same text
    other = tmp_path / "other"
    server, gw = start_observed(other, observed_config(), {"GATEWAY_FINGERPRINT_KEY": "z" * 40})
    try:
        response = _send(gw, "You triage leads. Be brief.", TOOLS)
        rekeyed = _record(other, response.headers["x-request-id"])
        assert rekeyed["fingerprints"]["instructions"] != a["fingerprints"]["instructions"]
    finally:
        server.stop()
