"""The fallback section: which failures it answers, in which shape, and what it records."""

from __future__ import annotations

import openai
import pytest

from gateway import errors
from gateway.context import RequestContext
from gateway.errors import GatewayError, Reason
from gateway.fallback.message import fallback_message
from gateway.fallback.triggers import TRIGGERS
from gateway.policy.compile import compile_policy
from gateway.policy.models import Policy
from gateway.surfaces.openai_chat import parse
from tests.audit.conftest import AuditedGateway
from tests.fakes.upstream import FakeUpstream, Reply, Status
from tests.fallback.client import PRIMARY, Sdk, ask
from tests.fallback.conftest import BACKUP_MESSAGE

CARD = "my card is 4111 1111 1111 1111"


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_blocked_request_is_answered_and_flagged_for_review(
    gw: AuditedGateway, upstream: FakeUpstream, sdk: Sdk, stream: bool
) -> None:
    text, headers, _ = ask(gw, sdk, "reviewed", stream, CARD)
    assert text == BACKUP_MESSAGE
    assert headers["x-gateway-fallback"] == "boundary.blocked_entity"
    assert headers["x-gateway-decision"] == "transform; reason=fallback.review"
    assert upstream.received == []  # nothing left the gateway
    r = gw.one(headers["x-request-id"], wait=2)
    assert (r.review, r.fallback, r.fallback_reason, r.status) == (
        True,
        "message",
        "boundary.blocked_entity",
        200,
    )
    assert r.reasons == ["boundary.blocked_entity", "fallback.review"]
    assert r.entities["request"] == {"block": {"CREDIT_CARD": 1}}
    if not stream:
        assert (r.tokens_in, r.tokens_out) == (0, 0)  # no model answered


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_blocked_answer_is_replaced_before_any_byte(
    gw: AuditedGateway, upstream: FakeUpstream, sdk: Sdk, stream: bool
) -> None:
    upstream.script(PRIMARY[sdk], Reply("the card on file is 4111 1111 1111 1111, as asked"))
    text, headers, _ = ask(gw, sdk, "reviewed", stream)
    assert text == BACKUP_MESSAGE and "4111" not in text
    assert headers["x-gateway-fallback"] == "boundary.blocked_output"
    r = gw.one(headers["x-request-id"], wait=2)
    assert r.reasons == ["boundary.blocked_output", "fallback.review"] and r.review


def test_rate_limit_of_the_limits_step_is_answered_with_the_message(
    gw: AuditedGateway, upstream: FakeUpstream
) -> None:
    text, headers, _ = ask(gw, "openai", "limited", False)
    assert text == "echo: hi" and "x-gateway-fallback" not in headers
    for sdk, stream in (("anthropic", True), ("openai", False)):
        text, headers, _ = ask(gw, sdk, "limited", stream)  # type: ignore[arg-type]
        assert text == BACKUP_MESSAGE
        assert headers["x-gateway-fallback"] == "limits.rate_exceeded"
        r = gw.one(headers["x-request-id"], wait=2)
        assert (r.status, r.fallback, r.reasons) == (200, "message", ["limits.rate_exceeded"])
    assert len(upstream.received) == 1


def test_a_failure_not_in_on_is_not_answered(gw: AuditedGateway, upstream: FakeUpstream) -> None:
    # checked: on [low_confidence, upstream_error, upstream_timeout]; a 429 is rate_limited.
    upstream.script("gpt-up", Status(429), Status(429))
    with pytest.raises(openai.RateLimitError) as caught:
        gw.openai("checked").chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.code == "upstream.rate_limited"
    assert upstream.requests_for("gpt-backup-up") == []  # no model fallback for it either
    assert "x-gateway-fallback" not in caught.value.response.headers


def _ctx(fallback: dict[str, object]) -> RequestContext:
    doc = {
        "workflow": "w",
        "owner": "o",
        "access": {"roles": ["r"], "models": ["m"]},
        "fallback": fallback,
    }
    ctx = RequestContext("chat", "w")
    ctx.policy = compile_policy(Policy.model_validate(doc), "w.yaml")
    ctx.request = parse(b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
    return ctx


@pytest.mark.parametrize(
    ("code", "trigger"),
    [("limits.budget_exhausted", "budget_exhausted"), ("limits.rate_exceeded", "rate_limited")],
)
def test_limit_refusals_are_caught_by_their_code(code: str, trigger: str) -> None:
    # The limits step raises these as GatewayError; the fallback knows them by code alone.
    exc = GatewayError(Reason(code, 429, "over the limit"))
    ctx = _ctx({"on": [trigger], "message": "later, please"})
    body = fallback_message(ctx, exc)
    assert isinstance(body, bytes) and b"later, please" in body
    assert (ctx.fallback, ctx.fallback_reason) == ("message", code)
    assert fallback_message(_ctx({"on": ["upstream_error"], "message": "x"}), exc) is None


def test_every_mapped_code_exists() -> None:
    for code in TRIGGERS:
        assert code.startswith("limits.") or code in errors.REASONS, code
