"""The hand-written OTLP encoder says what the OpenTelemetry SDK's encoder says of the same
span, decoded by opentelemetry-proto."""

from __future__ import annotations

import datetime
import gzip
import http.server
import ipaddress
import ssl
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from gateway.observe import otlp

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
ATTRS: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.usage.input_tokens": 1234567,
    "negative": -5,
    "ratio": 0.25,
    "flag": True,
    "off": False,
    "gateway.reasons": ["boundary.masked", "quality.unchecked"],
    "empty": [],
    "unicode": "zürich ✓",
}


def _sdk(span_id: int, parent: int | None, remote: bool, kind: SpanKind, error: bool) -> bytes:
    flags = TraceFlags(TraceFlags.SAMPLED)
    span = ReadableSpan(
        "chat m",
        context=SpanContext(TRACE, span_id, is_remote=False, trace_flags=flags),
        parent=SpanContext(TRACE, parent, is_remote=remote, trace_flags=flags) if parent else None,
        resource=Resource({"service.name": "gw"}),
        attributes=ATTRS,
        kind=kind,
        status=Status(StatusCode.ERROR if error else StatusCode.UNSET),
        start_time=1_700_000_000_000_000_001,
        end_time=1_700_000_000_123_456_789,
        instrumentation_scope=InstrumentationScope("llm-data-gateway"),
    )
    return encode_spans([span]).SerializeToString()


def _ours(span_id: int, parent: int | None, remote: bool, kind: int, error: bool) -> bytes:
    span = otlp.span(
        TRACE.to_bytes(16, "big"),
        span_id,
        parent,
        otlp.name_field("chat m"),
        kind,
        1_700_000_000_000_000_001,
        1_700_000_000_123_456_789,
        otlp.attributes(ATTRS),
        error=error,
        remote_parent=remote,
    )
    return otlp.request("gw", "llm-data-gateway", [span])


def _decoded(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return request


def test_spans_decode_as_the_sdk_encodes_them() -> None:
    cases = [
        (0x00F067AA0BA902B7, 0x1122334455667788, True, SpanKind.SERVER, otlp.SERVER, False),
        (0x0102030405060708, 0x00F067AA0BA902B7, False, SpanKind.CLIENT, otlp.CLIENT, True),
        (0x0A0B0C0D0E0F1011, None, False, SpanKind.INTERNAL, otlp.INTERNAL, False),
    ]
    for span_id, parent, remote, sdk_kind, kind, error in cases:
        ours = _decoded(_ours(span_id, parent, remote, kind, error))
        sdk = _decoded(_sdk(span_id, parent, remote, sdk_kind, error))
        (resource,) = ours.resource_spans
        (scope,) = resource.scope_spans
        (expected,) = sdk.resource_spans
        (expected_scope,) = expected.scope_spans
        assert scope.spans == expected_scope.spans
        assert scope.scope.name == expected_scope.scope.name == "llm-data-gateway"
        service = {kv.key: kv.value.string_value for kv in resource.resource.attributes}
        assert service == {"service.name": "gw"}


def test_a_request_joins_spans_of_several_requests() -> None:
    spans = [
        otlp.span(TRACE.to_bytes(16, "big"), i, None, otlp.name_field(f"s{i}"), 1, i, i + 1, b"")
        for i in range(1, 300)
    ]
    (resource,) = _decoded(otlp.request("gw", "scope", spans)).resource_spans
    assert [s.name for s in resource.scope_spans[0].spans] == [f"s{i}" for i in range(1, 300)]


def test_headers_from_the_environment() -> None:
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "Api-Key=a%20b, x-tenant = t1,broken"}
    assert otlp.headers_from_env(env) == {"api-key": "a b", "x-tenant": "t1"}
    env["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] = "only=this"
    assert otlp.headers_from_env(env) == {"only": "this"}
    assert otlp.headers_from_env({}) == {}


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "collector")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "collector.pem", folder / "collector.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_a_tls_collector_with_its_own_ca_and_gzip(tmp_path: Path) -> None:
    """``OTEL_EXPORTER_OTLP_CERTIFICATE`` and ``..._COMPRESSION`` are honoured, as the
    OpenTelemetry exporters honour them."""
    cert_file, key_file = _self_signed(tmp_path)
    received: list[tuple[str | None, bytes]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((self.headers.get("content-encoding"), body))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/v1/traces"
    body = otlp.request("gw", "scope", [])
    try:
        trusting = otlp.Sender(
            url,
            5,
            {
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": str(cert_file),
                "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
            },
        )
        assert trusting.send(body) == 200
        trusting.close()
        assert [(enc, gzip.decompress(raw)) for enc, raw in received] == [("gzip", body)]
        untrusting = otlp.Sender(url, 5, {})  # the system's CAs do not know this one
        with pytest.raises(httpx.ConnectError):
            untrusting.send(body)
        untrusting.close()
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ValueError, match="certificate settings"):
        otlp.Sender(url, 5, {"OTEL_EXPORTER_OTLP_CERTIFICATE": str(tmp_path / "missing.pem")})
