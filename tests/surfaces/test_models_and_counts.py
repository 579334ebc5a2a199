"""Model retrieval in both APIs' shapes, Anthropic token counting inspected as the request it
counts, and responses the provider kept (read and deleted only where the workflow allows)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.conftest import Gateway
from tests.fakes.upstream import FakeUpstream


def test_models_retrieve_in_both_shapes_and_only_what_the_caller_may_use(
    gateway: Gateway,
) -> None:
    model = gateway.openai("wire").models.retrieve("mock-embed")
    assert (model.id, model.object, model.owned_by) == ("mock-embed", "model", "demo")
    claude = gateway.anthropic("wire").models.retrieve("claude-test")
    assert claude.id == "claude-test" and claude.type == "model"
    with pytest.raises(openai.NotFoundError) as missing:
        gateway.openai("strict").models.retrieve("mock-model")  # not in this workflow
    assert missing.value.code == "request.unknown_model"
    with pytest.raises(anthropic.NotFoundError) as other:
        gateway.anthropic("strict").models.retrieve("nope")
    assert isinstance(other.value.body, dict)
    assert other.value.body["error"]["code"] == "request.unknown_model"


def test_count_tokens_is_inspected_like_the_request_it_counts(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    client = gateway.anthropic("wire")
    counted = client.messages.count_tokens(
        model="mock-model", messages=[{"role": "user", "content": "hello there"}]
    )
    assert counted.input_tokens > 0
    messages = [{"role": "user", "content": "mail ann@example.com"}]
    faked = client.messages.count_tokens(model="claude-test", messages=messages, system="be kind")  # type: ignore[arg-type]
    assert faked.input_tokens == 3  # the fake's count of one message: what it got is checked below
    (sent,) = upstream.received
    assert sent.path == "/v1/messages/count_tokens"
    assert "ann@example.com" not in str(sent.body) and "max_tokens" not in sent.body
    with pytest.raises(anthropic.PermissionDeniedError) as card:
        client.messages.count_tokens(
            model="mock-model", messages=[{"role": "user", "content": "4111 1111 1111 1111"}]
        )
    assert isinstance(card.value.body, dict)
    assert card.value.body["error"]["code"] == "boundary.blocked_entity"


def test_kept_responses_are_refused_without_provider_storage(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    for call in (
        lambda c: c.responses.retrieve("resp_1"),
        lambda c: c.responses.delete("resp_1"),
        lambda c: c.responses.input_items.list("resp_1"),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            call(gateway.openai("wire"))
        assert caught.value.code == "retention.provider_state"
    assert upstream.received == []


def test_kept_responses_are_forwarded_and_inspected_where_storage_is_allowed(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    client = gateway.openai("wire_kept")  # provider storage allowed, no data rules
    assert client.responses.retrieve("resp_1").output_text == "mail kim@example.com"
    client.responses.delete("resp_1")
    items = client.responses.input_items.list("resp_1")
    assert len(items.data) == 2
    assert [(r.path, r.headers.get("authorization", "")[:9]) for r in upstream.received] == [
        ("/v1/responses/resp_1", "Bearer sk"),
        ("/v1/responses/resp_1", "Bearer sk"),
        ("/v1/responses/resp_1/input_items", "Bearer sk"),
    ]


def test_what_the_provider_kept_is_inspected_as_an_answer(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    client = gateway.openai("wire_strict")  # masks e-mail addresses, storage allowed
    kept = client.responses.retrieve("resp_1").output_text
    assert "kim@example.com" not in kept and "<EMAIL_ADDRESS" in kept
    items = client.responses.input_items.list("resp_1")
    assert "kim@example.com" not in str(items.model_dump())
