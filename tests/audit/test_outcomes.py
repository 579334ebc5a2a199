"""Every outcome, driven through the official SDKs, leaves exactly one record with the
right fields, and never the credential."""

from __future__ import annotations

import re
import urllib.request
from urllib.error import HTTPError

import openai
import pytest

from tests.audit.conftest import AuditedGateway
from tests.fakes.upstream import FakeUpstream, Reply, SlowStream, Status

MESSAGES = [{"role": "user", "content": "hello there"}]


def test_admitted_openai(audited: AuditedGateway, upstream: FakeUpstream) -> None:
    raw = audited.openai().chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=MESSAGES,
        max_tokens=50,  # type: ignore[arg-type]
    )
    r = audited.one(raw.headers["x-request-id"])
    assert (r.decision, r.reasons, r.status, r.endpoint, r.workflow) == (
        "allow",
        [],
        200,
        "chat",
        "chat_app",
    )
    assert (r.subject, r.roles, r.auth_method, r.mode) == ("alice", ["analyst"], "key", "enforce")
    assert r.key_id and r.policy_version == raw.headers["x-gateway-policy-version"]
    assert (r.model_requested, r.model_used, r.fallback_used) == ("gpt-test", "gpt-test", False)
    assert (r.upstream_status, r.attempts, r.retries, r.streamed) == (200, 1, 0, False)
    usage = raw.parse().usage
    assert usage is not None and (r.tokens_in, r.tokens_out) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert r.upstream_ms is not None and 0 < r.upstream_ms <= r.latency_ms
    assert (r.reserved_usd, r.actual_usd, r.content) == (None, None, None)
    # retention.upstream_store defaults to false: store: false is sent, and recorded.
    assert r.upstream_store is False and upstream.received[-1].body["store"] is False


def test_admitted_anthropic_with_retries(audited: AuditedGateway, upstream: FakeUpstream) -> None:
    upstream.script("claude-up", Status(500), Reply("ok"))
    raw = audited.anthropic().messages.with_raw_response.create(
        model="claude-test",
        max_tokens=20,
        messages=MESSAGES,  # type: ignore[arg-type]
    )
    r = audited.one(raw.headers["x-request-id"])
    assert (r.endpoint, r.decision, r.status, r.attempts, r.retries) == (
        "messages",
        "allow",
        200,
        2,
        1,
    )
    assert (r.tokens_in, r.tokens_out) == (2, 1)


def test_upstream_store_false_is_sent_and_recorded(
    audited: AuditedGateway, upstream: FakeUpstream
) -> None:
    raw = audited.openai("kept").chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=MESSAGES,  # type: ignore[arg-type]
    )
    assert upstream.received[-1].body["store"] is False
    assert audited.one(raw.headers["x-request-id"]).upstream_store is False


def test_fallback_model(audited: AuditedGateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", *[Status(503)] * 3)
    raw = audited.openai().chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=MESSAGES,  # type: ignore[arg-type]
    )
    r = audited.one(raw.headers["x-request-id"])
    assert (r.model_requested, r.model_used, r.fallback_used) == ("gpt-test", "gpt-backup", True)
    assert (r.attempts, r.retries, r.decision) == (4, 3, "transform")
    assert (r.reasons, r.fallback, r.fallback_reason) == (
        ["upstream.error"],
        "model",
        "upstream.error",
    )
    assert raw.headers["x-gateway-fallback"] == "upstream.error"


def test_upstream_error(audited: AuditedGateway, upstream: FakeUpstream) -> None:
    # claude-backup is reached through translation: the whole chain is down.
    for model in ("gpt-up", "gpt-backup-up", "claude-backup-up"):
        upstream.script(model, *[Status(500)] * 3)
    with pytest.raises(openai.InternalServerError) as caught:
        audited.openai().chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    r = audited.one(caught.value.response.headers["x-request-id"])
    # One code for each fallback (to gpt-backup, then claude-backup), then the last failure.
    assert (r.decision, r.reasons, r.status, r.upstream_status) == (
        "error",
        ["upstream.error"] * 3,
        502,
        500,
    )
    assert (r.attempts, r.model_used, r.tokens_in) == (9, None, None)


@pytest.mark.parametrize(
    ("credential", "code"),
    [
        ("gwk_" + "x" * 43, "auth.invalid_key"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "auth.invalid_key"),
    ],
)
def test_refused_by_auth_never_stores_the_token(
    audited: AuditedGateway, credential: str, code: str
) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        audited.openai(key=credential).chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    r = audited.one(caught.value.response.headers["x-request-id"])
    assert (r.decision, r.reasons, r.status, r.subject, r.key_id) == (
        "deny",
        [code],
        401,
        None,
        None,
    )
    assert credential.encode() not in audited.db.read_bytes()
    assert credential.encode() not in (audited.db.parent / "audit.db-wal").read_bytes()


def test_no_credential(audited: AuditedGateway) -> None:
    err = _raw(
        f"{audited.anthropic_url()}/v1/messages",
        data=b"{}",
        headers={"anthropic-version": "2023-06-01"},
    )
    assert audited.one(err.headers["x-request-id"]).reasons == ["auth.missing_key"]


def test_refused_by_access(audited: AuditedGateway) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        audited.openai(key=audited.ops_key).chat.completions.create(
            model="gpt-test", messages=MESSAGES
        )  # type: ignore[arg-type]
    r = audited.one(caught.value.response.headers["x-request-id"])
    assert (r.decision, r.reasons, r.subject, r.status) == (
        "deny",
        ["access.role_denied"],
        "olga",
        403,
    )
    assert r.model_requested is None  # refused before the body was read


def test_unknown_workflow(audited: AuditedGateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        audited.openai("nope").chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    r = audited.one(caught.value.response.headers["x-request-id"])
    assert (r.policy_version, r.reasons, r.status) == (None, ["policy.unknown_workflow"], 404)
    # Not a configured name: never written verbatim (its length and a keyed hash instead).
    assert re.fullmatch(r"<unlisted:4:[0-9a-f]{8}>", r.workflow or "")


def _raw(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> HTTPError:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    with pytest.raises(HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    return caught.value


def test_unknown_route(audited: AuditedGateway) -> None:
    err = _raw(f"{audited.url}/v2/whatever")
    r = audited.one(err.headers["x-request-id"])
    assert (r.status, r.reasons, r.endpoint) == (404, ["request.unknown_route"], "unknown")


def test_body_too_large(audited: AuditedGateway) -> None:
    err = _raw(
        f"{audited.openai_url()}/chat/completions",
        data=b"{" + b" " * (70 * 1024) + b"}",
        headers={
            "authorization": f"Bearer {audited.analyst_key}",
            "content-type": "application/json",
        },
    )
    r = audited.one(err.headers["x-request-id"])
    assert (r.status, r.reasons, r.subject) == (413, ["request.too_large"], "alice")


def test_stream_completed(audited: AuditedGateway) -> None:
    with audited.openai().chat.completions.with_streaming_response.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = list(response.parse())
    assert "hello there" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    r = audited.one(request_id)
    assert (r.streamed, r.stream_end, r.status, r.decision) == (True, "completed", 200, "allow")
    assert usage is not None and (r.tokens_in, r.tokens_out) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )


def test_anthropic_stream_completed(audited: AuditedGateway) -> None:
    with audited.anthropic().messages.with_streaming_response.create(
        model="claude-test",
        max_tokens=20,
        messages=MESSAGES,
        stream=True,  # type: ignore[arg-type]
    ) as response:
        request_id = response.headers["x-request-id"]
        events = list(response.parse())
    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    r = audited.one(request_id)
    assert (r.streamed, r.stream_end) == (True, "completed")
    assert (r.tokens_in, r.tokens_out) == (
        start.message.usage.input_tokens,
        delta.usage.output_tokens,
    )


def test_stream_cut_by_the_client(audited: AuditedGateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", SlowStream(events=50, interval=0.05))
    with audited.openai().chat.completions.with_streaming_response.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,  # type: ignore[arg-type]
    ) as response:
        request_id = response.headers["x-request-id"]
        events = response.parse()
        next(iter(events))
        next(iter(events))
    r = audited.one(request_id, wait=5)
    assert (r.streamed, r.stream_end, r.status) == (True, "client_cut", 200)
    assert upstream.wait_for_disconnects(1)
    assert len(audited.records(request_id, wait=0.3)) == 1  # and only one


def test_admin_requests_are_recorded(audited: AuditedGateway) -> None:
    err = _raw(
        f"{audited.url}/admin/policies", headers={"authorization": f"Bearer {audited.analyst_key}"}
    )
    r = audited.one(err.headers["x-request-id"])
    assert (r.endpoint, r.status, r.reasons, r.subject) == (
        "admin",
        403,
        ["access.admin_required"],
        "alice",
    )
