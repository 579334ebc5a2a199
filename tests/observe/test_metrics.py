"""``GET /metrics`` counts what the requests recorded, with labels that stay bounded."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx

from gateway.observe.metrics import Metrics
from tests.observe.conftest import Observed, observed_config, samples, start_observed, value


def test_requests_tokens_cost_and_steps_are_counted(observed: Observed) -> None:
    before = observed.scrape()
    for _ in range(5):
        assert observed.chat("notes", "hello there").status_code == 200
    after = observed.scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert (
        delta(
            "gateway_requests_total",
            workflow="notes",
            endpoint="chat",
            decision="allow",
            reason="none",
        )
        == 5
    )
    assert delta("gateway_request_duration_seconds_count", workflow="notes", endpoint="chat") == 5
    assert delta("gateway_tokens_total", workflow="notes", model="mock-model", direction="in") > 0
    assert delta("gateway_tokens_total", workflow="notes", model="mock-model", direction="out") > 0
    assert delta("gateway_cost_usd_total", workflow="notes", model="mock-model") > 0
    # every step of the path, from the one hook: the audit step once per request
    assert delta("gateway_step_duration_seconds_count", step="audit") == 5
    assert delta("gateway_step_duration_seconds_count", step="forward") == 5
    assert delta("gateway_upstream_duration_seconds_count", workflow="notes") == 5


def test_boundary_findings_and_refusals_by_reason(observed: Observed) -> None:
    before = observed.scrape()
    assert observed.chat("triage", "write to ann@example.com today").status_code == 200
    assert observed.chat("triage", "tell me about Project Zeus").status_code == 403
    assert observed.chat("triage", "hi", model="gpt-nope").status_code == 403
    after = observed.scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert (
        delta(
            "gateway_boundary_findings_total",
            workflow="triage",
            direction="request",
            action="mask",
            entity="EMAIL_ADDRESS",
        )
        == 1
    )
    assert delta("gateway_boundary_findings_total", action="block", entity="DENY_TERM") == 1
    assert delta("gateway_requests_total", workflow="triage", decision="masked") == 1
    assert (
        delta(
            "gateway_requests_total",
            workflow="triage",
            decision="deny",
            reason="boundary.blocked_entity",
        )
        == 1
    )
    assert delta("gateway_reasons_total", workflow="triage", reason="access.model_denied") == 1
    # the made-up model is not a label value
    assert not any(dict(ls).get("model") == "gpt-nope" for (_, ls) in after)


def test_labels_stay_bounded_whatever_clients_send(observed: Observed) -> None:
    """A thousand made-up models, workflows and paths create no series."""

    async def flood(start: int, n: int) -> None:
        headers = {"authorization": f"Bearer {observed.key}"}
        async with httpx.AsyncClient(base_url=observed.url, headers=headers, timeout=30) as c:
            for i in range(start, start + n):
                body = {"model": f"model-{i}", "messages": [{"role": "user", "content": "hi"}]}
                await asyncio.gather(
                    c.post("/w/triage/v1/chat/completions", json=body),
                    c.post(f"/w/wf-{i}/v1/chat/completions", json=body),
                    c.post(
                        f"/v1/chat/completions?user={i}", json=body, headers={"x-workflow": f"x{i}"}
                    ),
                    c.post(f"/made/up/{i}", json=body),
                )

    asyncio.run(flood(0, 20))
    time.sleep(1.5)  # the drift gauges of the loaded workflows are exported once a second
    series = set(observed.scrape())
    asyncio.run(flood(20, 1000))
    time.sleep(1.5)
    grown = set(observed.scrape())
    assert {(n, ls) for n, ls in grown} - series == set()
    for _, labels in grown:
        for _, label_value in labels:
            assert "model-" not in label_value and "wf-" not in label_value
            assert "made" not in label_value


def test_metrics_can_be_admin_only(tmp_path: Path) -> None:
    config = observed_config(metrics={"expose": "admin"})
    server, gw = start_observed(tmp_path, config)
    try:
        assert httpx.get(f"{gw.url}/metrics").status_code == 401
        headers = {"authorization": f"Bearer {gw.key}"}
        assert httpx.get(f"{gw.url}/metrics", headers=headers).status_code == 403
        scraped = gw.scrape(authorization=f"Bearer {gw.admin_key}")
        assert value(scraped, "gateway_policy_version_info", workflow="notes") == 1
    finally:
        server.stop()


def test_metrics_on_a_port_of_their_own(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = observed_config(metrics={"expose": "port", "port": port})
    server, gw = start_observed(tmp_path, config)
    try:
        assert gw.chat("notes", "hi").status_code == 200
        assert httpx.get(f"{gw.url}/metrics").status_code == 404  # not on the gateway's listener
        deadline = time.monotonic() + 5  # what the port serves is flushed each second
        while time.monotonic() < deadline:
            scraped = samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
            if value(scraped, "gateway_requests_total", workflow="notes") == 1:
                break
            time.sleep(0.2)
        assert value(scraped, "gateway_requests_total", workflow="notes") == 1
    finally:
        server.stop()


def test_candidate_verdicts_by_version_and_would_be_decision(tmp_path: Path) -> None:
    from tests.observe.conftest import POLICIES
    from tests.support.server import write_yaml

    candidate = {**POLICIES["notes"], "access": {"roles": ["ops"], "models": ["mock-model"]}}
    write_yaml(tmp_path / "policies" / "notes.candidate.yaml", candidate)
    server, gw = start_observed(tmp_path, observed_config())
    try:
        for _ in range(2):
            assert gw.chat("notes", "hi").status_code == 200  # live: allowed
        scraped = gw.scrape()
        (version,) = {
            dict(ls)["candidate_version"]
            for (name, ls) in scraped
            if name == "gateway_candidate_verdicts_total"
        }
        assert version.startswith("sha256:")
        assert (
            value(
                scraped,
                "gateway_candidate_verdicts_total",
                workflow="notes",
                decision="deny",
                differs="true",
            )
            == 2
        )
    finally:
        server.stop()


def test_a_flush_in_pieces_counts_what_requests_add_in_its_pauses() -> None:
    """The sampler flushes a label set at a time, requests counting in the pauses (branch
    ``holds``): a label set first seen in a pause is not an error, and nothing is lost."""
    metrics = Metrics()
    metrics.requests.add(("a", "chat", "allow", "none"))
    metrics.step_seconds.observe(("forward",), 0.001)
    flushing = metrics.flushing()
    next(flushing)
    metrics.requests.add(("b", "chat", "allow", "none"))
    metrics.step_seconds.observe(("forward",), 0.002)
    metrics.step_seconds.observe(("audit",), 0.003)
    for _ in flushing:
        pass
    metrics.flush()
    scraped = samples(metrics.render().decode())
    assert value(scraped, "gateway_requests_total", decision="allow") == 2
    assert value(scraped, "gateway_step_duration_seconds_count", step="forward") == 2
    assert value(scraped, "gateway_step_duration_seconds_sum", step="audit") == 0.003
