"""The Responses API (``POST /v1/responses``) through the gateway with the official SDK:
whole and streamed, masked, refused in OpenAI's shape, stored state refused."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import Gateway
from tests.fakes.upstream import FakeUpstream


def test_whole_answer_from_the_mock(gateway: Gateway) -> None:
    raw = gateway.openai().responses.with_raw_response.create(
        model="mock-model", input="hello there", instructions="Be brief."
    )
    response = raw.parse()
    assert response.output_text == "[mock mock-1] You said: hello there"
    assert response.usage is not None and response.usage.input_tokens > 0
    assert raw.headers["x-gateway-decision"] == "allow"


def test_streamed_answer_from_the_mock(gateway: Gateway) -> None:
    with gateway.openai().responses.stream(model="mock-model", input="hello stream") as stream:
        types = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.output_text == "[mock mock-1] You said: hello stream"
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.output_text.delta" in types
