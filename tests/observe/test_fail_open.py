"""Every fail-open is counted by component: a limits store and a breaker store that cannot be
reached, under policies that let requests pass; and a stream's time to first event."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.observe.conftest import POLICIES, observed_config, start_observed, value


def test_unreachable_stores_that_fail_open_are_counted(tmp_path: Path) -> None:
    config = observed_config()
    config["stores"] = {"redis_url": "redis://127.0.0.1:1/0"}  # nothing listens there
    config["limits"] = {"store_timeout_ms": 100}
    config["breaker"] = {"store_timeout_ms": 50, "store_backoff_ms": 0}
    policy = {
        **POLICIES["notes"],
        "limits": {
            "rate": [{"per": "user", "requests_per_minute": 100}],
            "on_store_error": "allow",
        },
    }
    POLICIES["open"] = {**policy, "workflow": "open"}
    try:
        server, gw = start_observed(tmp_path, config, {"GATEWAY_VAULT_KEY": "v" * 40})
    finally:
        del POLICIES["open"]
    try:
        for _ in range(3):
            assert gw.chat("open", "hi").status_code == 200
        deadline = time.monotonic() + 5  # the breaker's count is sampled once a second
        while time.monotonic() < deadline:
            scraped = gw.scrape()
            if value(scraped, "gateway_fail_open_total", component="breaker_store") >= 3:
                break
            time.sleep(0.2)
        assert (
            value(scraped, "gateway_fail_open_total", workflow="open", component="limits_store")
            == 3
        )
        assert value(scraped, "gateway_fail_open_total", component="breaker_store") >= 3
        assert value(scraped, "gateway_fail_open_total", component="detector") == 0
        assert (
            value(
                scraped,
                "gateway_requests_total",
                workflow="open",
                reason="limits.store_unavailable",
            )
            == 3
        )
    finally:
        server.stop()


def test_time_to_first_streamed_event(tmp_path: Path) -> None:
    server, gw = start_observed(tmp_path, observed_config())
    try:
        body = {
            "model": "mock-model",
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        }
        with httpx.stream(
            "POST",
            f"{gw.url}/w/notes/v1/chat/completions",
            headers={"authorization": f"Bearer {gw.key}"},
            json=body,
        ) as response:
            assert response.status_code == 200
            assert b"[DONE]" in response.read()
        scraped = gw.scrape()
        assert value(scraped, "gateway_time_to_first_event_seconds_count", workflow="notes") == 1
        assert value(scraped, "gateway_requests_total", workflow="notes", endpoint="chat") == 1
    finally:
        server.stop()
