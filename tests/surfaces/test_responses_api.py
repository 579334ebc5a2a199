"""The Responses API (``POST /v1/responses``) through the gateway with the official SDK:
whole and streamed, masked, refused in OpenAI's shape, stored state refused."""

from __future__ import annotations

import openai
import pytest
from pydantic import BaseModel

from gateway.translate import ANSWER_TOOL
from tests.conftest import Gateway
from tests.fakes.upstream import FakeUpstream, Reply, ToolCall


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
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
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
    assert message.content[0].type == "tool_use" and message.content[0].input == {
        "city": "mock",
        "days": 1,
    }
    with gateway.anthropic().messages.stream(
        model="mock-model",
        max_tokens=100,
        messages=[{"role": "user", "content": "call get_weather"}],
        tools=[{"name": "get_weather", "input_schema": WEATHER["parameters"]}],  # type: ignore[list-item, typeddict-item]
    ) as astream:
        streamed = astream.get_final_message()
    assert streamed.content[0].type == "tool_use" and streamed.content[0].input == {
        "city": "mock",
        "days": 1,
    }
    json_answer = gateway.openai().chat.completions.create(
        model="mock-model",
        messages=[{"role": "user", "content": "hi"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": WEATHER["parameters"]},
        },  # type: ignore[typeddict-item]
    )
    assert json_answer.choices[0].message.content == '{"city":"mock","days":1}'


@pytest.mark.parametrize("stream", [False, True])
def test_the_openai_provider_gets_masked_input_and_no_store(
    gateway: Gateway, upstream: FakeUpstream, stream: bool
) -> None:
    client = gateway.openai("wire")
    ask = "write to ann@example.com please"
    if stream:
        with client.responses.stream(model="gpt-test", input=ask, max_output_tokens=5000) as events:
            response = events.get_final_response()
    else:
        response = client.responses.create(model="gpt-test", input=ask, max_output_tokens=5000)
    (sent,) = upstream.received
    assert sent.path == "/v1/responses"
    assert sent.body["store"] is False
    assert sent.body["max_output_tokens"] == 1024  # clamped to the workflow's ceiling
    assert "ann@example.com" not in str(sent.body)
    # The echo of the placeholder comes back; the address never went out.
    assert response.output_text.startswith("echo: write to <EMAIL_ADDRESS")
    assert "ann@example.com" not in response.output_text


def test_every_text_slot_and_unknown_field_is_inspected(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    address = "ann@example.com"
    gateway.openai("wire").responses.create(
        model="gpt-test",
        instructions=f"Reply to {address}",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": f"hi {address}"}]},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "f",
                "arguments": f'{{"to": "{address}"}}',
            },
            {"type": "function_call_output", "call_id": "c1", "output": f"sent to {address}"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
        ],
        tools=[
            {"type": "function", "name": "f", "description": f"mail {address}", "parameters": {}}
        ],  # type: ignore[list-item]
        metadata={"owner": address},
        extra_body={"made_up_field": {"deep": [address]}},
    )
    (sent,) = upstream.received
    assert address not in str(sent.body)
    assert sent.body["input"][3] == {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [],
        "encrypted_content": "opaque",
    }


def test_a_card_is_refused_in_openai_shape(gateway: Gateway, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        gateway.openai("wire").responses.create(model="gpt-test", input="card 4111 1111 1111 1111")
    assert caught.value.code == "boundary.blocked_entity"
    assert upstream.received == []


def test_provider_state_is_refused_without_provider_storage(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai("wire").responses.create(
            model="gpt-test", input="and then?", previous_response_id="resp_123"
        )
    assert caught.value.code == "retention.provider_state"
    assert "send the whole conversation in 'input'" in caught.value.message
    assert upstream.received == []
    # Where the workflow allows provider storage, it goes through as the client sent it.
    gateway.openai("wire_kept").responses.create(
        model="gpt-test", input="and then?", previous_response_id="resp_123"
    )
    (sent,) = upstream.received
    assert sent.body["previous_response_id"] == "resp_123" and "store" not in sent.body


def test_provider_storage_is_forbidden_by_default(gateway: Gateway, upstream: FakeUpstream) -> None:
    """chat_app says nothing about retention: ``store: false`` goes out (even over the
    client's ``store: true``) and state the provider kept cannot be named."""
    client = gateway.openai()
    client.responses.create(model="gpt-test", input="hello", store=True)
    (sent,) = upstream.received
    assert sent.body["store"] is False
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-test", input="and then?", previous_response_id="r_1")
    assert caught.value.code == "retention.provider_state"
    with pytest.raises(openai.BadRequestError) as kept:
        client.responses.retrieve("resp_1")
    assert kept.value.code == "retention.provider_state"
    assert len(upstream.received) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_the_answer_is_masked_in_deltas_done_events_and_the_final_response(
    gateway: Gateway, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.script("gpt-up", Reply("Contact bob@example.com for details"))
    client = gateway.openai("wire")
    if not stream:
        text = client.responses.create(model="gpt-test", input="who?").output_text
        assert "bob@example.com" not in text and "<EMAIL_ADDRESS" in text
        return
    with client.responses.stream(model="gpt-test", input="who?") as events:
        seen = list(events)
        final = events.get_final_response()
    deltas = "".join(e.delta for e in seen if e.type == "response.output_text.delta")
    (done,) = [e.text for e in seen if e.type == "response.output_text.done"]
    assert "bob@example.com" not in deltas and deltas == done == final.output_text
    assert "<EMAIL_ADDRESS" in done


def test_a_card_in_a_streamed_answer_ends_the_stream(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Reply("your card is 4111 1111 1111 1111 ok"))
    deltas: list[str] = []
    stream = gateway.openai("wire").responses.stream(model="gpt-test", input="card?")
    with pytest.raises(openai.APIError) as caught, stream as events:
        deltas += [e.delta for e in events if e.type == "response.output_text.delta"]
    assert caught.value.code == "boundary.blocked_output"
    assert "4111" not in "".join(deltas)


WEATHER_CHAT = {"type": "function", "name": "get_weather", "parameters": WEATHER["parameters"]}


@pytest.mark.parametrize("stream", [False, True])
def test_a_responses_request_is_served_by_an_anthropic_model(
    gateway: Gateway, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.script("claude-up", Reply("Bonjour from Claude"))
    client = gateway.openai("wire")
    kwargs: dict[str, object] = {
        "model": "claude-test",
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": "say hi to ann@example.com"}],
        "max_output_tokens": 50,
    }
    if stream:
        with client.responses.stream(**kwargs) as events:  # type: ignore[arg-type]
            types = [e.type for e in events]
            response = events.get_final_response()
        assert types[0] == "response.created" and types[-1] == "response.completed"
    else:
        response = client.responses.create(**kwargs)  # type: ignore[arg-type]
    assert response.output_text == "Bonjour from Claude"
    assert response.usage is not None and response.usage.output_tokens > 0
    (sent,) = upstream.received
    assert sent.path == "/v1/messages"
    assert sent.body["system"] == [{"type": "text", "text": "Be brief."}]
    assert sent.body["max_tokens"] == 50
    assert "ann@example.com" not in str(sent.body)


def test_a_tool_call_from_an_anthropic_model_comes_back_as_a_function_call(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    from tests.fakes.upstream import ToolCall

    upstream.script("claude-up", ToolCall("get_weather", ('{"city": ', '"Paris"}')))
    with gateway.openai("wire").responses.stream(
        model="claude-test",
        input="weather?",
        tools=[WEATHER_CHAT],  # type: ignore[list-item]
    ) as events:
        response = events.get_final_response()
    (call,) = response.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.arguments == '{"city": "Paris"}'
    (sent,) = upstream.received
    assert sent.body["tools"][0]["name"] == "get_weather"


def test_what_anthropic_cannot_take_is_refused_translate_unsupported(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai("wire").responses.create(
            model="claude-test",
            input="look it up",
            tools=[{"type": "web_search"}],  # type: ignore[list-item]
        )
    assert caught.value.code == "translate.unsupported"
    assert upstream.received == []


def test_fallback_model_and_message_answer_in_the_responses_shape(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    from tests.fakes.upstream import Status

    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", Reply("from the fallback model"))
    raw = gateway.openai("wire_fallback").responses.with_raw_response.create(
        model="gpt-test", input="hi"
    )
    assert raw.parse().output_text == "from the fallback model"
    assert [r.path for r in upstream.received] == ["/v1/responses", "/v1/messages"]
    client = gateway.openai("wire_fallback")
    blocked = client.responses.create(model="gpt-test", input="card 4111 1111 1111 1111")
    assert blocked.output_text == "Sorry, not now."
    with client.responses.stream(model="gpt-test", input="card 4111 1111 1111 1111") as events:
        assert events.get_final_response().output_text == "Sorry, not now."
    # No text stands in for vectors: embeddings are refused, not answered with the message.
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.embeddings.create(model="mock-embed", input="card 4111 1111 1111 1111")
    assert caught.value.code == "boundary.blocked_entity"


class Weather(BaseModel):
    city: str
    celsius: int


@pytest.mark.parametrize("stream", [False, True])
def test_a_structured_output_is_answered_by_an_anthropic_model(
    gateway: Gateway, upstream: FakeUpstream, stream: bool
) -> None:
    """``text.format`` with a JSON schema reaches Claude as a forced tool; the tool's input
    comes back as the output text, which the SDK parses."""
    upstream.script("claude-up", ToolCall(ANSWER_TOOL, ('{"city": "Pa', 'ris", "celsius": 18}')))
    client = gateway.openai("wire")
    ask = "weather in Paris for ann@example.com"
    if stream:
        with client.responses.stream(model="claude-test", input=ask, text_format=Weather) as s:
            types = [e.type for e in s]
            response = s.get_final_response()
        assert "response.output_text.delta" in types
        assert "response.function_call_arguments.delta" not in types
    else:
        response = client.responses.parse(model="claude-test", input=ask, text_format=Weather)
    assert response.output_parsed == Weather(city="Paris", celsius=18)
    assert [item.type for item in response.output] == ["message"]
    (sent,) = upstream.received
    (tool,) = sent.body["tools"]
    assert tool["name"] == ANSWER_TOOL
    assert tool["input_schema"]["properties"] == {
        "city": {"title": "City", "type": "string"},
        "celsius": {"title": "Celsius", "type": "integer"},
    }
    assert sent.body["tool_choice"] == {"type": "tool", "name": ANSWER_TOOL}
    assert "ann@example.com" not in str(sent.body)
