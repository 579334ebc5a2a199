"""Bad input on every new endpoint: the right status, the API's own error shape, a stable
reason code and an audit record; never a 500."""

from __future__ import annotations

import sqlite3
import time

import httpx2
import pytest

from gateway.audit import AuditRecord
from tests.conftest import Gateway
from tests.support.clients import TLS

# (method, path under /w/{workflow}/v1, a valid body, whether the API is Anthropic's)
ENDPOINTS = {
    "responses": ("POST", "/responses", {"model": "mock-model", "input": "hi"}, False),
    "embeddings": ("POST", "/embeddings", {"model": "mock-embed", "input": "hi"}, False),
    "count_tokens": (
        "POST",
        "/messages/count_tokens",
        {"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]},
        True,
    ),
    "model": ("GET", "/models/mock-model", None, False),
    "model_anthropic": ("GET", "/models/mock-model", None, True),
    "kept": ("GET", "/responses/resp_1", None, False),
    "kept_delete": ("DELETE", "/responses/resp_1", None, False),
}
POSTS = [k for k, v in ENDPOINTS.items() if v[0] == "POST"]


def _call(
    gateway: Gateway,
    endpoint: str,
    *,
    workflow: str = "wire",
    content: bytes | None = None,
    key: str | None = None,
) -> httpx2.Response:
    method, path, body, anthropic = ENDPOINTS[endpoint]
    headers = {"authorization": f"Bearer {key or gateway.analyst_key}"}
    if anthropic:
        headers["anthropic-version"] = "2023-06-01"
    if content is None and body is not None:
        import orjson

        content = orjson.dumps(body)
    if content is not None:
        headers["content-type"] = "application/json"
    url = f"{gateway.url}/w/{workflow}/v1{path}"
    return httpx2.request(method, url, content=content, headers=headers, timeout=10, verify=TLS)


def _refused(response: httpx2.Response, status: int, code: str, anthropic: bool) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    if anthropic:
        assert body["type"] == "error" and isinstance(body["error"]["type"], str)
    else:
        assert {"message", "type", "param", "code"} <= set(body["error"])
    assert "Traceback" not in response.text


def _audited(gateway: Gateway, response: httpx2.Response) -> AuditRecord:
    request_id = response.headers["x-request-id"]
    deadline = time.monotonic() + 5
    while True:
        with sqlite3.connect(gateway.config_dir / "audit.db") as db:
            rows = db.execute(
                "SELECT body FROM audit_records WHERE request_id = ?", (request_id,)
            ).fetchall()
        if rows or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    (row,) = rows
    return AuditRecord.from_json(row[0])


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_the_valid_call_works(gateway: Gateway, endpoint: str) -> None:
    """The baseline of the refusals below (the kept-response calls: refused by retention)."""
    response = _call(gateway, endpoint)
    expected = 400 if endpoint.startswith("kept") else 200
    assert response.status_code == expected, response.text


CASES = [
    ("malformed json", {"content": b'{"model": '}, 400, "request.invalid_json"),
    ("not an object", {"content": b"[1, 2]"}, 400, "request.invalid"),
    (
        "wrong types",
        {"content": b'{"model": 5, "input": {"a": 1}, "messages": 3}'},
        400,
        "request.invalid",
    ),
    ("missing model", {"content": b'{"input": "hi", "messages": []}'}, 400, "request.invalid"),
    ("oversized", {"content": b'{"input": "' + b"x" * 70_000 + b'"}'}, 413, "request.too_large"),
]


@pytest.mark.parametrize("endpoint", POSTS)
@pytest.mark.parametrize(("case", "kwargs", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_bodies(
    gateway: Gateway, endpoint: str, case: str, kwargs: dict[str, bytes], status: int, code: str
) -> None:
    response = _call(gateway, endpoint, **kwargs)  # type: ignore[arg-type]
    _refused(response, status, code, ENDPOINTS[endpoint][3])
    record = _audited(gateway, response)
    assert record.status == status and code in record.reasons


DENIED = [
    ("unknown workflow", {"workflow": "no-such-flow"}, 404, "policy.unknown_workflow"),
    ("denied role", {"key": "ops"}, 403, "access.role_denied"),
]


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize(("case", "kwargs", "status", "code"), DENIED, ids=[c[0] for c in DENIED])
def test_denied_callers(
    gateway: Gateway, endpoint: str, case: str, kwargs: dict[str, str], status: int, code: str
) -> None:
    if kwargs.get("key") == "ops":
        kwargs = {"key": gateway.ops_key}
    response = _call(gateway, endpoint, **kwargs)  # type: ignore[arg-type]
    _refused(response, status, code, ENDPOINTS[endpoint][3])
    record = _audited(gateway, response)
    assert record.status == status and code in record.reasons


@pytest.mark.parametrize("endpoint", POSTS)
def test_a_denied_model(gateway: Gateway, endpoint: str) -> None:
    import orjson

    body = {**ENDPOINTS[endpoint][2], "model": "gpt-backup"}  # in the catalogue, not allowed
    response = _call(gateway, endpoint, content=orjson.dumps(body))
    _refused(response, 403, "access.model_denied", ENDPOINTS[endpoint][3])
    assert "access.model_denied" in _audited(gateway, response).reasons


@pytest.mark.parametrize("endpoint", ["model", "model_anthropic"])
def test_a_model_not_available_is_404_in_the_api_shape(gateway: Gateway, endpoint: str) -> None:
    method, _, _, anthropic = ENDPOINTS[endpoint]
    ENDPOINTS["_missing"] = (method, "/models/gpt-backup", None, anthropic)
    try:
        response = _call(gateway, "_missing")
    finally:
        del ENDPOINTS["_missing"]
    _refused(response, 404, "request.unknown_model", anthropic)
    assert "request.unknown_model" in _audited(gateway, response).reasons
