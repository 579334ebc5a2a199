"""OTLP/HTTP trace export without the OpenTelemetry SDK: spans encoded straight into the
protobuf wire format of ``ExportTraceServiceRequest`` (opentelemetry-proto's
trace/v1/trace.proto), and posted from a thread.

Why not the SDK: its ``ReadableSpan`` objects and its encoder cost about 45 µs per span in
Python (a traced request has a dozen), so tracing every request cost more than the request
itself (docs/performance.md). Here a span is a few byte strings joined, and the parts that
never change (a step span's name and attribute, the status, the resource) are encoded once.
tests/observe/test_traces.py decodes what is sent with opentelemetry-proto.
"""

from __future__ import annotations

import gzip
import ssl
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Final
from urllib.parse import unquote

__all__ = [
    "CLIENT",
    "INTERNAL",
    "SERVER",
    "Attributes",
    "Sender",
    "attributes",
    "headers_from_env",
    "name_field",
    "request",
    "span",
    "tls_from_env",
]

# Span.SpanKind
INTERNAL: Final = 1
SERVER: Final = 2
CLIENT: Final = 3

Attributes = Mapping[str, str | bool | int | float | Sequence[str]]

_FIXED64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")
# Span.flags: the parent's is-remote bit is known (0x100), and set (0x200)
_FLAGS_LOCAL = b"\x85\x01" + struct.pack("<I", 0x100)
_FLAGS_REMOTE = b"\x85\x01" + struct.pack("<I", 0x300)
_STATUS_UNSET = b"\x7a\x00"  # an empty Status, as the SDK sends it
_STATUS_ERROR = b"\x7a\x02\x18\x02"  # code: STATUS_CODE_ERROR


_BYTE = [bytes((i,)) for i in range(256)]
_LENGTH_TAG = [_BYTE[number << 3 | 2] for number in range(16)]  # fields 1..15: one byte
# Encoded attributes with a string value, the same on most spans (a step, a model, a
# workflow, a policy version): kept, up to a bound.
_KV_CACHE: dict[tuple[str, str], bytes] = {}
_KV_CACHE_MAX = 4096


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or a message) numbered 1 to 15."""
    n = len(payload)
    return _LENGTH_TAG[number] + (_BYTE[n] if n < 0x80 else _varint(n)) + payload


def _any(value: str | bool | int | float | Sequence[str]) -> bytes:
    """An ``AnyValue``."""
    if isinstance(value, str):
        return _field(1, value.encode())
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)  # int64, two's complement
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    return _field(5, b"".join(_field(1, _any(v)) for v in value))


def attributes(attrs: Attributes, cache: bool = True) -> bytes:
    """``attrs`` as a span's ``attributes`` fields (9), ready to join into a span; ``cache``
    False for values that never repeat (an id)."""
    out = []
    for key, value in attrs.items():
        if cache and isinstance(value, str):
            encoded = _KV_CACHE.get((key, value))
            if encoded is None:
                encoded = _field(9, _field(1, key.encode()) + _field(2, _any(value)))
                if len(_KV_CACHE) >= _KV_CACHE_MAX:
                    _KV_CACHE.clear()
                _KV_CACHE[(key, value)] = encoded
            out.append(encoded)
        else:
            out.append(_field(9, _field(1, key.encode()) + _field(2, _any(value))))
    return b"".join(out)


def span(
    trace_id: bytes,
    span_id: int,
    parent_id: int | None,
    name: bytes,
    kind: int,
    start_ns: int,
    end_ns: int,
    attrs: bytes,
    error: bool = False,
    remote_parent: bool = False,
) -> bytes:
    """One ``Span`` as an entry of ``ScopeSpans.spans``; ``name`` the encoded name field
    (``name_field``), ``attrs`` from ``attributes``."""
    body = b"".join(
        (
            b"\x0a\x10",
            trace_id,
            b"\x12\x08",
            span_id.to_bytes(8, "big"),
            b"\x22\x08" + parent_id.to_bytes(8, "big") if parent_id else b"",
            name,
            b"\x30",
            bytes((kind,)),
            b"\x39",
            _FIXED64.pack(start_ns),
            b"\x41",
            _FIXED64.pack(end_ns),
            attrs,
            _STATUS_ERROR if error else _STATUS_UNSET,
            _FLAGS_REMOTE if remote_parent else _FLAGS_LOCAL,
        )
    )
    return b"\x12" + _varint(len(body)) + body


def name_field(name: str) -> bytes:
    """A span's encoded ``name`` field, for ``span`` (a constant name: encode it once)."""
    return _field(5, name.encode())


def request(service_name: str, scope_name: str, spans: Iterable[bytes]) -> bytes:
    """An ``ExportTraceServiceRequest`` of ``spans`` (from ``span``), one resource and scope."""
    resource = _field(1, _field(1, _field(1, b"service.name") + _field(2, _any(service_name))))
    scope = _field(1, _field(1, scope_name.encode()))
    scope_spans = _field(2, scope + b"".join(spans))
    return _field(1, resource + scope_spans)


def _setting(environ: Mapping[str, str], name: str) -> str | None:
    """``OTEL_EXPORTER_OTLP_TRACES_<name>``, else ``OTEL_EXPORTER_OTLP_<name>``, as
    OpenTelemetry's exporters read their settings."""
    return (
        environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}")
        or environ.get(f"OTEL_EXPORTER_OTLP_{name}")
        or None
    )


def headers_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The export's extra headers (a collector's credentials): ``..._HEADERS``, ``key=value``
    pairs separated by commas, values URL-encoded."""
    out: dict[str, str] = {}
    for pair in (_setting(environ, "HEADERS") or "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            out[unquote(key.strip()).lower()] = unquote(value.strip())
    return out


def tls_from_env(environ: Mapping[str, str]) -> ssl.SSLContext | bool:
    """How the collector's certificate is checked: ``..._CERTIFICATE`` (a CA file to trust)
    and ``..._CLIENT_CERTIFICATE`` with ``..._CLIENT_KEY`` (mutual TLS); else the system's
    CAs. A file that cannot be read stops the start, naming the setting."""
    ca, cert = _setting(environ, "CERTIFICATE"), _setting(environ, "CLIENT_CERTIFICATE")
    if ca is None and cert is None:
        return True
    try:
        context = ssl.create_default_context(cafile=ca)
        if cert is not None:
            context.load_cert_chain(cert, _setting(environ, "CLIENT_KEY"))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"OTLP export: the certificate settings cannot be used: {exc}") from None
    return context


class Sender:
    """POSTs encoded requests to the collector (one connection, kept alive); used by the
    export thread only. Headers, TLS files and ``..._COMPRESSION: gzip`` come from the
    environment, as OpenTelemetry's exporters take them."""

    def __init__(self, endpoint: str, timeout_s: float, environ: Mapping[str, str]) -> None:
        self._endpoint = endpoint
        self._gzip = (_setting(environ, "COMPRESSION") or "none").lower() == "gzip"
        headers = {**headers_from_env(environ), "content-type": "application/x-protobuf"}
        if self._gzip:
            headers["content-encoding"] = "gzip"
        verify = tls_from_env(environ)
        import httpx  # here: ~0.2 s of imports every start would pay, tracing or not

        self._client = httpx.Client(timeout=timeout_s, headers=headers, verify=verify)

    def send(self, body: bytes) -> int:
        """The collector's status; raises httpx.HTTPError when it cannot be reached."""
        if self._gzip:
            body = gzip.compress(body, compresslevel=1)  # spans compress well even so
        return self._client.post(self._endpoint, content=body).status_code

    def close(self) -> None:
        self._client.close()
