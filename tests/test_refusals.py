"""Bad input and refused callers: the right status, the API's own error shape, a stable reason
code in the body and the headers, and never a stack trace or the caller's secret."""

from __future__ import annotations

import anthropic
import httpx2
import openai
import pytest

from tests.conftest import Gateway
from tests.fakes.upstream import FakeUpstream
from tests.support.clients import TLS

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("workflow", "key", "model", "error", "code"),
    [
        ("chat_app", "gwk_0000_forged", "gpt-test", openai.AuthenticationError, "auth.invalid_key"),
        ("ops_only", None, "gpt-test", openai.PermissionDeniedError, "access.role_denied"),
        ("chat_app", None, "gpt-4-unlisted", openai.PermissionDeniedError, "access.model_denied"),
        ("no_such_flow", None, "gpt-test", openai.NotFoundError, "policy.unknown_workflow"),
    ],
)
def test_openai_refusals(
    gateway: Gateway,
    upstream: FakeUpstream,
    workflow: str,
    key: str | None,
    model: str,
    error: type[openai.APIStatusError],
    code: str,
) -> None:
    with pytest.raises(error) as caught:
        gateway.openai(workflow, key).chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.code == code
    assert caught.value.response.headers["x-gateway-decision"] == f"deny; reason={code}"
    assert "Traceback" not in caught.value.response.text
    assert upstream.received == []


@pytest.mark.parametrize(
    ("workflow", "key", "model", "error", "code"),
    [
        ("chat_app", "forged", "claude-test", anthropic.AuthenticationError, "auth.invalid_key"),
        ("ops_only", None, "gpt-test", anthropic.PermissionDeniedError, "access.role_denied"),
        ("chat_app", None, "claude-9", anthropic.PermissionDeniedError, "access.model_denied"),
        ("missing", None, "claude-test", anthropic.NotFoundError, "policy.unknown_workflow"),
    ],
)
def test_anthropic_refusals(
    gateway: Gateway,
    upstream: FakeUpstream,
    workflow: str,
    key: str | None,
    model: str,
    error: type[anthropic.APIStatusError],
    code: str,
) -> None:
    with pytest.raises(error) as caught:
        gateway.anthropic(workflow, key).messages.create(
            model=model, max_tokens=5, messages=MESSAGES
        )  # type: ignore[arg-type]
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error" and body["error"]["code"] == code
    assert caught.value.response.headers["x-gateway-decision"] == f"deny; reason={code}"
    assert upstream.received == []


def test_the_ops_key_is_admitted_where_its_role_is(gateway: Gateway) -> None:
    c = gateway.openai("ops_only", gateway.ops_key)
    assert [m.id for m in c.models.list()] == ["gpt-test"]


def test_max_output_tokens_over_the_ceiling(gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().chat.completions.create(
            model="gpt-test", messages=MESSAGES, max_tokens=257
        )  # type: ignore[arg-type]
    assert caught.value.code == "access.max_tokens_exceeded"


def post(
    gateway: Gateway, content: bytes, path: str = "/w/chat_app/v1/chat/completions", **headers: str
) -> httpx2.Response:
    hdrs = {
        "authorization": f"Bearer {gateway.analyst_key}",
        "content-type": "application/json",
        **headers,
    }
    return httpx2.post(gateway.url + path, content=content, headers=hdrs, verify=TLS)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "request.invalid_json"),
        (b"", "request.invalid_json"),
        (b"[1, 2]", "request.invalid"),
        (b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', "request.invalid"),
        (b'{"model": "gpt-test", "messages": "hello"}', "request.invalid"),
        (b'{"model": "gpt-test", "messages": [{"role": "user", "content": 3}]}', "request.invalid"),
        (b'{"model": "gpt-test", "messages": [{"content": "x"}]}', "request.invalid"),
        (
            b'{"model": "gpt-test", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "request.invalid",
        ),
        (
            b'{"model": "gpt-test", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}',
            "request.invalid",
        ),
        (
            b'{"model": "gpt-test", "messages": [{"role": "user", "content": [{"text": "x"}]}]}',
            "request.invalid",
        ),
    ],
)
def test_malformed_openai_bodies(
    gateway: Gateway, upstream: FakeUpstream, content: bytes, code: str
) -> None:
    response = post(gateway, content)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.headers["x-gateway-decision"] == f"deny; reason={code}"
    assert upstream.received == []


@pytest.mark.parametrize(
    "content",
    [
        b'{"model": "claude-test", "messages": [{"role": "user", "content": "x"}]}',  # no max_tokens
        b'{"model": "claude-test", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}',
        b'{"model": "claude-test", "max_tokens": 5, "system": 5, "messages": []}',
    ],
)
def test_malformed_anthropic_bodies(gateway: Gateway, content: bytes) -> None:
    response = post(gateway, content, "/w/chat_app/v1/messages")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": body["error"]["message"],
        "code": "request.invalid",
    }


def test_oversized_body_is_refused_with_413(gateway: Gateway, upstream: FakeUpstream) -> None:
    big = (
        b'{"model": "gpt-test", "messages": [{"role": "user", "content": "'
        + b"x" * 70_000
        + b'"}]}'
    )
    response = post(gateway, big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request.too_large"
    with pytest.raises(anthropic.APIStatusError) as caught:
        gateway.anthropic().messages.create(
            model="claude-test", max_tokens=5, messages=[{"role": "user", "content": "y" * 70_000}]
        )
    assert caught.value.status_code == 413
    assert upstream.received == []


def test_oversized_chunked_body_is_cut_off(gateway: Gateway) -> None:
    def chunks():  # no content-length: the limit must hold on the bytes actually received
        yield b'{"model": "gpt-test", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"z" * 1024
        yield b'"}]}'

    response = post(gateway, chunks())  # type: ignore[arg-type]
    assert response.status_code == 413


def test_missing_key_is_401_and_never_echoes_a_token(gateway: Gateway) -> None:
    response = httpx2.post(
        f"{gateway.url}/w/chat_app/v1/chat/completions",
        json={"model": "gpt-test", "messages": MESSAGES},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.missing_key"
    secret = "gwk_deadbeef_" + "s" * 40
    response = post(gateway, b"{}", authorization=f"Bearer {secret}")
    assert response.status_code == 401
    assert secret not in response.text


def test_no_workflow_named(gateway: Gateway) -> None:
    response = post(gateway, b"{}", "/v1/chat/completions")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "policy.missing_workflow"


def test_unknown_route_and_method(gateway: Gateway) -> None:
    response = httpx2.get(f"{gateway.url}/w/chat_app/v1/audio/speech")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "request.unknown_route"
    response = httpx2.get(f"{gateway.url}/w/chat_app/v1/chat/completions")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "request.method_not_allowed"


def test_health_and_readiness(gateway: Gateway) -> None:
    assert httpx2.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    ready = httpx2.get(f"{gateway.url}/readyz").json()
    assert set(ready["policies"]) == {"chat_app", "strict", "ops_only"}
