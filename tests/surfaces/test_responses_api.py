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


WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
        "required": ["city", "days"],
        "additionalProperties": False,
    },
}


@pytest.mark.parametrize("stream", [False, True])
def test_the_mock_calls_a_tool_when_asked(gateway: Gateway, stream: bool) -> None:
    client = gateway.openai()
    ask = "Please call get_weather for Paris"
    if stream:
        with client.responses.stream(model="mock-model", input=ask, tools=[WEATHER]) as events:
            response = events.get_final_response()
    else:
        response = client.responses.create(model="mock-model", input=ask, tools=[WEATHER])  # type: ignore[list-item]
    (call,) = response.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.arguments == '{"city":"mock","days":1}'
    # The tool's result goes back: the loop ends with text.
    follow = client.responses.create(
        model="mock-model",
        input=[
            {"role": "user", "content": ask},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert follow.output_text.startswith("[mock mock-1]")


def test_parse_gets_an_instance_of_the_schema(gateway: Gateway) -> None:
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int
        tags: list[str]

    parsed = gateway.openai().responses.parse(
        model="mock-model", input="Extract: Ann, 31", text_format=Person
    )
    assert parsed.output_parsed == Person(name="mock", age=0, tags=[])


def test_chat_and_messages_get_tool_calls_and_json_from_the_mock(gateway: Gateway) -> None:
    tool = {"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}
    chat = gateway.openai().chat.completions.create(
        model="mock-model",
        messages=[{"role": "user", "content": "use the weather tool"}],
        tools=[tool],  # type: ignore[list-item]
    )
    (call,) = chat.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    with gateway.openai().chat.completions.stream(
        model="mock-model",
        messages=[{"role": "user", "content": "use the weather tool"}],
        tools=[tool],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.tool_calls[0].function.arguments == '{"city":"mock","days":1}'  # type: ignore[index]
    message = gateway.anthropic().messages.create(
        model="mock-model",
        max_tokens=100,
        messages=[{"role": "user", "content": "call get_weather"}],
        tools=[{"name": "get_weather", "input_schema": WEATHER["parameters"]}],  # type: ignore[list-item, typeddict-item]
    )
    assert message.content[0].type == "tool_use" and message.content[0].input == {"city": "mock", "days": 1}
    with gateway.anthropic().messages.stream(
        model="mock-model",
        max_tokens=100,
        messages=[{"role": "user", "content": "call get_weather"}],
        tools=[{"name": "get_weather", "input_schema": WEATHER["parameters"]}],  # type: ignore[list-item, typeddict-item]
    ) as astream:
        streamed = astream.get_final_message()
    assert streamed.content[0].type == "tool_use" and streamed.content[0].input == {"city": "mock", "days": 1}
    json_answer = gateway.openai().chat.completions.create(
        model="mock-model",
        messages=[{"role": "user", "content": "hi"}],
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER["parameters"]}},  # type: ignore[typeddict-item]
    )
    assert json_answer.choices[0].message.content == '{"city":"mock","days":1}'
