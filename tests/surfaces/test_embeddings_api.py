"""Embeddings (``POST /v1/embeddings``) through the gateway with the official SDK: the texts
are inspected (masked or refused), token ids refused, vectors of the asked dimension."""

from __future__ import annotations

import math

import openai
import pytest

from tests.conftest import Gateway
from tests.fakes.upstream import FakeUpstream


def test_vectors_from_the_mock_are_deterministic_and_sized(gateway: Gateway) -> None:
    client = gateway.openai("wire")
    one = client.embeddings.create(model="mock-embed", input=["hello", "world"])
    again = client.embeddings.create(model="mock-embed", input="hello", encoding_format="float")
    assert [len(d.embedding) for d in one.data] == [1536, 1536]
    assert one.data[0].embedding == pytest.approx(again.data[0].embedding, abs=1e-6)
    assert math.isclose(sum(v * v for v in again.data[0].embedding), 1.0, rel_tol=1e-3)
    small = client.embeddings.create(model="mock-embed", input="hello", dimensions=8)
    assert len(small.data[0].embedding) == 8
    assert one.usage.prompt_tokens > 0


def test_texts_are_masked_before_they_are_embedded(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    raw = gateway.openai("wire").embeddings.with_raw_response.create(
        model="embed-test", input=["mail ann@example.com now", "plain"], user="bob@example.com"
    )
    assert raw.headers["x-gateway-decision"] == "masked"
    (sent,) = upstream.received
    assert sent.path == "/v1/embeddings"
    assert sent.body["model"] == "embed-up"
    assert "ann@example.com" not in str(sent.body) and "bob@example.com" not in str(sent.body)
    assert sent.body["input"][1] == "plain"
    assert len(raw.parse().data) == 2


def test_a_card_is_refused_and_on_pii_block_refuses_a_mask(gateway: Gateway) -> None:
    with pytest.raises(openai.PermissionDeniedError) as card:
        gateway.openai("wire").embeddings.create(model="mock-embed", input="4111 1111 1111 1111")
    assert card.value.code == "boundary.blocked_entity"
    with pytest.raises(openai.PermissionDeniedError) as strict:
        gateway.openai("wire_strict").embeddings.create(model="mock-embed", input="ann@example.com")
    assert strict.value.code == "boundary.blocked_entity"
    # The same workflow masks it on the chat endpoints as before.
    chat = gateway.openai("wire_strict").chat.completions.create(
        model="mock-model", messages=[{"role": "user", "content": "ann@example.com"}]
    )
    assert "ann@example.com" not in (chat.choices[0].message.content or "")


def test_token_ids_are_refused_as_uninspectable(gateway: Gateway) -> None:
    for ids in ([1, 2, 3], [[1, 2], [3]]):
        with pytest.raises(openai.PermissionDeniedError) as caught:
            gateway.openai("wire").embeddings.create(model="mock-embed", input=ids)
        assert caught.value.code == "boundary.uninspectable"


def test_a_chat_model_does_not_embed_and_an_embedding_model_does_not_chat(
    gateway: Gateway,
) -> None:
    with pytest.raises(openai.BadRequestError) as embed:
        gateway.openai("wire").embeddings.create(model="mock-model", input="x")
    assert embed.value.code == "request.model_api_mismatch"
    with pytest.raises(openai.BadRequestError) as chat:
        gateway.openai("wire").chat.completions.create(
            model="mock-embed", messages=[{"role": "user", "content": "x"}]
        )
    assert chat.value.code == "request.model_api_mismatch"
