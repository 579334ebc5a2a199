"""Spans exported by OTLP/HTTP to a local receiver that decodes them; the client's
traceparent is the parent and goes upstream; a collector that is down never delays a request."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.fakes.upstream import FakeUpstream
from tests.observe.conftest import observed_config, start_observed, value

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


class Receiver:
    """An OTLP/HTTP traces endpoint: every span it was sent, decoded from protobuf."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.spans: list[dict[str, Any]] = []
        self.delay_s = delay_s
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                time.sleep(outer.delay_s)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            outer.spans.append(_decoded(span))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.spans) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.spans

    def close(self) -> None:
        self._server.shutdown()


def _decoded(span: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for kv in span.attributes:
        v = kv.value
        kind = v.WhichOneof("value")
        attrs[kv.key] = (
            [x.string_value for x in v.array_value.values]
            if kind == "array_value"
            else getattr(v, kind)
        )
    return {
        "name": span.name,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent": span.parent_span_id.hex(),
        "attrs": attrs,
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _config(upstream: FakeUpstream, endpoint: str, **tracing: Any) -> dict[str, Any]:
    config = observed_config(tracing={"enabled": True, "endpoint": endpoint, **tracing})
    config["providers"]["openai"] = {
        "type": "openai",
        "base_url": f"{upstream.base_url}/v1",
        "api_key_env": "OPENAI_API_KEY",
    }
    config["models"]["gpt-test"] = {"provider": "openai", "upstream_model": "gpt-up"}
    return config


def test_spans_follow_genai_conventions_and_the_client_trace(
    tmp_path: Path, upstream: FakeUpstream, receiver: Receiver
) -> None:
    from tests.observe.conftest import POLICIES

    POLICIES["triage"]["access"]["models"].append("gpt-test")
    try:
        server, gw = start_observed(
            tmp_path, _config(upstream, receiver.url), {"OPENAI_API_KEY": "sk-up"}
        )
    finally:
        POLICIES["triage"]["access"]["models"].remove("gpt-test")
    try:
        secret = "write to ann@example.com"
        response = httpx.post(
            f"{gw.url}/w/triage/v1/chat/completions",
            headers={
                "authorization": f"Bearer {gw.key}",
                "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01",
            },
            json={"model": "gpt-test", "messages": [{"role": "user", "content": secret}]},
        )
        assert response.status_code == 200
        # propagated upstream: the same trace, the gateway's request span as the parent
        sent = upstream.requests_for("gpt-up")[-1].headers["traceparent"]
        version, trace_id, parent_id, flags = sent.split("-")
        assert (version, trace_id, flags) == ("00", CLIENT_TRACE, "01")

        spans = receiver.wait(8)
        by_name = {s["name"]: s for s in spans}
        (root,) = [s for s in spans if s["parent"] == CLIENT_SPAN]
        assert root["name"] == "chat gpt-test" and root["trace_id"] == CLIENT_TRACE
        assert root["span_id"] == parent_id
        attrs = root["attrs"]
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.request.model"] == "gpt-test"
        assert attrs["gen_ai.response.model"] == "gpt-test"
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
        assert attrs["gateway.decision"] == "masked"
        # a span per step, children of the request span
        for step in ("authenticate", "boundary", "forward", "audit"):
            assert by_name[f"gateway.{step}"]["parent"] == root["span_id"]
        # the upstream attempt under the forward step
        attempts = [s for s in spans if s["name"] == "chat gpt-test" and s is not root]
        assert len(attempts) == 1
        assert attempts[0]["parent"] == by_name["gateway.forward"]["span_id"]
        guard = by_name["guardrail data_boundary"]["attrs"]
        assert guard["gateway.policy.version"].startswith("sha256:")
        assert guard["gateway.guardrail.verdict"] == "transform"
        assert guard["gateway.entities.request.mask"] == 1
        assert all(s["trace_id"] == CLIENT_TRACE for s in spans)
        # never the text
        assert not any("ann@example.com" in str(s) for s in spans)
        # the trace id is in the audit record
        request_id = response.headers["x-request-id"]
        with sqlite3.connect(tmp_path / "audit.db") as db:
            (body,) = db.execute(
                "SELECT body FROM audit_records WHERE request_id = ?", (request_id,)
            ).fetchone()
        assert orjson.loads(body)["trace_id"] == CLIENT_TRACE
    finally:
        server.stop()


def test_a_collector_that_is_down_or_slow_never_delays_requests(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    slow = Receiver(delay_s=2.0)
    config = _config(upstream, slow.url, queue_max=4, batch_max=2, export_timeout_ms=3000)
    server, gw = start_observed(tmp_path, config, {"OPENAI_API_KEY": "sk-up"})
    try:
        started = time.monotonic()
        for _ in range(10):
            assert gw.chat("notes", "hi").status_code == 200
        assert time.monotonic() - started < 2.0  # ten requests, each well under the delay
        scraped = gw.scrape()
        assert value(scraped, "gateway_spans_dropped_total") > 0
    finally:
        server.stop()
        slow.close()
