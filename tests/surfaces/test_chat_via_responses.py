"""A chat request for a model that serves only the Responses API (``endpoints: [responses]``):
translated on the way out, its answer (whole or streamed, text or tool calls) back as chat."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.fakes.upstream import FakeUpstream, Reply

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.mark.parametrize("stream", [False, True])
def test_chat_reaches_a_responses_only_model(
    gateway: Gateway, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.script("resp-up", Reply("the answer"))
    client = gateway.openai("wire")
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "write to ann@example.com"},
    ]
    if stream:
        with client.chat.completions.stream(model="resp-test", messages=messages) as events:  # type: ignore[arg-type]
            completion = events.get_final_completion()
    else:
        completion = client.chat.completions.create(model="resp-test", messages=messages)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "the answer"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is None or completion.usage.completion_tokens > 0
    (sent,) = upstream.received
    assert sent.path == "/v1/responses"
    assert sent.body["store"] is False and sent.body["max_output_tokens"] == 1024
    assert sent.body["input"][0] == {"type": "message", "role": "system", "content": "Be brief."}
    assert "ann@example.com" not in str(sent.body)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_come_back_as_chat_tool_calls(gateway: Gateway, stream: bool) -> None:
    client = gateway.openai("wire")
    messages = [{"role": "user", "content": "use get_weather"}]
    if stream:
        with client.chat.completions.stream(
            model="mock-resp",
            messages=messages,
            tools=[WEATHER],  # type: ignore[arg-type, list-item]
        ) as events:
            completion = events.get_final_completion()
    else:
        completion = client.chat.completions.create(
            model="mock-resp",
            messages=messages,
            tools=[WEATHER],  # type: ignore[arg-type, list-item]
        )
    (call,) = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather" and call.function.arguments == '{"city":"mock"}'  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"
    follow = client.chat.completions.create(
        model="mock-resp",
        messages=[
            *messages,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],  # type: ignore[list-item]
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert (follow.choices[0].message.content or "").startswith("[mock mock-1]")
