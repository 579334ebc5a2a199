"""Cross-provider fallback through the real gateway and both official SDKs: the requested
model's upstream fails, the fallback model of the other API answers, and the client sees its
own API's shapes (whole answers, streams through the SDK stream helpers, tools, errors) with
the usage the upstream reported in the audit record and the data boundary still applied."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from pydantic import BaseModel

from gateway.translate import ANSWER_TOOL
from tests.audit.conftest import AuditedGateway, start_gateway
from tests.fakes.upstream import FakeUpstream, RawStream, Reply, Status, ToolCall
from tests.translate.policy import falling_back

SYSTEM = "Be brief."
ASK = "what is the weather in Paris"  # 6 words: the fake counts words as tokens
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ARGS = ('{"city":', ' "Paris"}')


def _policy(name: str, models: list[str], fallback: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "workflow": name,
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": models},
        **falling_back(fallback),
        **extra,
    }


MASK = {"data": {"entities": {"EMAIL_ADDRESS": "mask"}}}
POLICIES = {
    "to_claude": _policy("to_claude", ["gpt-test"], ["claude-test"]),
    "to_gpt": _policy("to_gpt", ["claude-test"], ["gpt-test"]),
    "masked_to_claude": _policy("masked_to_claude", ["gpt-test"], ["claude-test"], **MASK),
    "masked_to_gpt": _policy("masked_to_gpt", ["claude-test"], ["gpt-test"], **MASK),
    "tokens_to_claude": _policy(
        "tokens_to_claude",
        ["gpt-test"],
        ["claude-test"],
        data={"entities": {"EMAIL_ADDRESS": "tokenize"}},
    ),
    "checked_to_claude": _policy(
        "checked_to_claude",
        ["gpt-test"],
        ["claude-test"],
        quality={"min_avg_logprob": -5.0, "must_match": ["^Sunny"]},
    ),
    "capped": _policy(
        "capped",
        ["gpt-test"],
        ["claude-test"],
        access={"roles": ["analyst"], "models": ["gpt-test"], "max_output_tokens": 77},
    ),
}


@pytest.fixture(scope="module")
def gw(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuditedGateway]:
    gateway, server = start_gateway(tmp_path_factory.mktemp("cross"), upstream, policies=POLICIES)
    try:
        yield gateway
    finally:
        server.stop()


def _openai_messages() -> list[Any]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ASK}]


def _check_record(
    gw: AuditedGateway, request_id: str, used: str, tokens: tuple[int, int], streamed: bool
) -> None:
    r = gw.one(request_id, wait=2)
    # Another model answered than the one asked for: a transform, for the upstream's failure.
    assert (r.decision, r.status, r.model_used, r.fallback_used, r.streamed) == (
        "transform",
        200,
        used,
        True,
        streamed,
    )
    assert "upstream.error" in r.reasons
    assert (r.tokens_in, r.tokens_out) == tokens
    assert r.attempts == 2 and r.upstream_status == 200
    if streamed:
        assert r.stream_end == "completed"


# OpenAI client -> Anthropic fallback


def test_openai_answer_from_claude(gw: AuditedGateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", Reply("Sunny and mild today"))
    raw = gw.openai("to_claude").chat.completions.with_raw_response.create(
        model="gpt-test", messages=_openai_messages()
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "Sunny and mild today"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and (
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
    ) == (8, 4)
    sent = upstream.received[-1]
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == "sk-ant-upstream"
    assert "authorization" not in sent.headers and "anthropic-version" in sent.headers
    assert sent.body == {
        "model": "claude-up",
        "messages": [{"role": "user", "content": [{"type": "text", "text": ASK}]}],
        "system": [{"type": "text", "text": SYSTEM}],
        "max_tokens": 4096,  # Anthropic requires it; this workflow sets no ceiling
    }
    _check_record(gw, raw.headers["x-request-id"], "claude-test", (8, 4), False)


def test_openai_ceiling_becomes_anthropic_max_tokens(
    gw: AuditedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Status(503))
    gw.openai("capped").chat.completions.create(model="gpt-test", messages=_openai_messages())
    assert upstream.received[-1].body["max_tokens"] == 77


@pytest.mark.parametrize("include_usage", [True, False])
def test_openai_stream_helper_from_claude(
    gw: AuditedGateway, upstream: FakeUpstream, include_usage: bool
) -> None:
    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", Reply(pieces=("Sunny ", "and ", "mild ", "today")))
    options: Any = {"stream_options": {"include_usage": True}} if include_usage else {}
    with gw.openai("to_claude").chat.completions.with_streaming_response.create(
        model="gpt-test", messages=_openai_messages(), stream=True, **options
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = list(response.parse())
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Sunny and mild today"
    )
    assert (chunks[-1].choices == []) is include_usage
    assert upstream.received[-1].body["stream"] is True
    _check_record(gw, request_id, "claude-test", (8, 4), True)
    # The SDK's own stream helper accumulates the same chunks into a final completion.
    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", Reply(pieces=("Sunny ", "and ", "mild ", "today")))
    with gw.openai("to_claude").chat.completions.stream(
        model="gpt-test", messages=_openai_messages(), **options
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Sunny and mild today"
    assert final.usage is not None and (
        final.usage.prompt_tokens,
        final.usage.completion_tokens,
    ) == (8, 4)


@pytest.mark.parametrize("stream", [False, True])
def test_openai_tool_call_from_claude(
    gw: AuditedGateway, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", ToolCall("get_weather", ARGS))
    history: list[Any] = [
        *_openai_messages(),
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "rain"},
        {"role": "user", "content": "and Paris?"},
    ]  # fmt: skip
    client = gw.openai("to_claude")
    if stream:
        with client.chat.completions.stream(
            model="gpt-test", messages=history, tools=[WEATHER], tool_choice="required"
        ) as s:
            final = s.get_final_completion()
    else:
        final = client.chat.completions.create(
            model="gpt-test", messages=history, tools=[WEATHER], tool_choice="required"
        )  # type: ignore[assignment]
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id == "toolu_1"
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )
    sent = upstream.received[-1].body
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "input_schema": WEATHER["function"]["parameters"],
        }
    ]
    assert sent["tool_choice"] == {"type": "any"}
    assert sent["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_0", "name": "get_weather", "input": {"city": "Lyon"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_0", "content": "rain"},
                                     {"type": "text", "text": "and Paris?"}]},
    ]  # fmt: skip


# Anthropic client -> OpenAI fallback


def test_anthropic_answer_from_gpt(gw: AuditedGateway, upstream: FakeUpstream) -> None:
    upstream.script("claude-up", Status(503))
    upstream.script("gpt-up", Reply("Sunny and mild today"))
    raw = gw.anthropic("to_gpt").messages.with_raw_response.create(
        model="claude-test",
        max_tokens=50,
        system=SYSTEM,
        messages=[{"role": "user", "content": ASK}],
    )
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "Sunny and mild today"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (8, 4)
    sent = upstream.received[-1]
    assert (
        sent.path == "/v1/chat/completions"
        and sent.headers["authorization"] == "Bearer sk-upstream-openai"
    )
    assert "x-api-key" not in sent.headers
    assert sent.body == {
        "model": "gpt-up",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ASK}],
        "max_completion_tokens": 50,
    }
    _check_record(gw, raw.headers["x-request-id"], "gpt-test", (8, 4), False)


def test_anthropic_stream_helper_from_gpt(gw: AuditedGateway, upstream: FakeUpstream) -> None:
    upstream.script("claude-up", Status(500))
    upstream.script("gpt-up", Reply(pieces=("Sunny ", "and ", "mild ", "today")))
    with gw.anthropic("to_gpt").messages.with_streaming_response.create(
        model="claude-test",
        max_tokens=50,
        system=SYSTEM,
        messages=[{"role": "user", "content": ASK}],
        stream=True,
    ) as response:
        request_id = response.headers["x-request-id"]
        kinds = [event.type for event in response.parse()]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert upstream.received[-1].body["stream_options"] == {"include_usage": True}
    _check_record(gw, request_id, "gpt-test", (8, 4), True)
    upstream.script("claude-up", Status(500))
    upstream.script("gpt-up", Reply(pieces=("Sunny ", "and ", "mild ", "today")))
    with gw.anthropic("to_gpt").messages.stream(
        model="claude-test",
        max_tokens=50,
        system=SYSTEM,
        messages=[{"role": "user", "content": ASK}],
    ) as stream:
        assert "".join(stream.text_stream) == "Sunny and mild today"
        message = stream.get_final_message()
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (8, 4)


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_call_from_gpt(
    gw: AuditedGateway, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.script("claude-up", Status(500))
    upstream.script("gpt-up", ToolCall("get_weather", ARGS))
    tool = {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "input_schema": WEATHER["function"]["parameters"],
    }
    history: list[Any] = [
        {"role": "user", "content": ASK},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_0", "name": "get_weather", "input": {"city": "Lyon"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "rain"},
                                     {"type": "text", "text": "and Paris?"}]},
    ]  # fmt: skip
    kwargs: Any = {
        "model": "claude-test",
        "max_tokens": 50,
        "messages": history,
        "tools": [tool],
        "tool_choice": {"type": "any"},
    }
    client = gw.anthropic("to_gpt")
    if stream:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert message.stop_reason == "tool_use"
    block = message.content[-1]
    assert block.type == "tool_use" and (block.id, block.name, block.input) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    sent = upstream.received[-1].body
    assert sent["tool_choice"] == "required"
    assert sent["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Lyon"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_0", "content": "rain"},
        {"role": "user", "content": "and Paris?"},
    ]  # fmt: skip


# Errors, refusals and fail-closed streams


def test_upstream_refusal_reaches_each_sdk_in_its_own_shape(
    gw: AuditedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", Status(400))
    with pytest.raises(openai.BadRequestError) as oai:
        gw.openai("to_claude").chat.completions.create(
            model="gpt-test", messages=_openai_messages()
        )
    assert oai.value.body == {
        "message": "fake upstream error 400",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert oai.value.response.headers["x-gateway-decision"] == "error; reason=upstream.rejected"
    upstream.script("claude-up", Status(500))
    upstream.script("gpt-up", Status(404))
    with pytest.raises(anthropic.NotFoundError) as ant:
        gw.anthropic("to_gpt").messages.create(
            model="claude-test", max_tokens=5, messages=[{"role": "user", "content": ASK}]
        )
    assert ant.value.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "fake upstream error 404"},
    }


def test_translated_rate_limit_keeps_retry_after(
    gw: AuditedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", Status(429, retry_after=7))
    with pytest.raises(openai.RateLimitError) as caught:
        gw.openai("to_claude").chat.completions.create(
            model="gpt-test", messages=_openai_messages()
        )
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "upstream.rate_limited"


def test_untranslatable_request_is_a_clear_400(gw: AuditedGateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", Status(500))
    with pytest.raises(openai.BadRequestError) as caught:
        gw.openai("to_claude").chat.completions.with_raw_response.create(
            model="gpt-test", messages=_openai_messages(), n=2
        )
    assert caught.value.code == "translate.unsupported"
    assert (
        "'n' cannot be sent to a model served through the Anthropic Messages API"
        in caught.value.message
    )
    assert [r.path for r in upstream.received] == [
        "/v1/chat/completions"
    ]  # nothing left for Claude
    r = gw.one(caught.value.response.headers["x-request-id"], wait=2)
    # The first reason is why Claude was tried at all.
    assert (r.status, r.reasons) == (400, ["upstream.error", "translate.unsupported"])


def test_unknown_event_ends_the_openai_stream_with_an_error(
    gw: AuditedGateway, upstream: FakeUpstream
) -> None:
    start = b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-up","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
    block = b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    delta = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello "}}\n\n'
    odd = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"brand_new_delta","x":"secret plan"}}\n\n'
    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", RawStream((start, block, delta, odd)))
    received: list[str] = []

    def drain(chunks: Iterator[Any]) -> None:
        for chunk in chunks:
            received.append(chunk.choices[0].delta.content or "")

    with gw.openai("to_claude").chat.completions.with_streaming_response.create(
        model="gpt-test", messages=_openai_messages(), stream=True
    ) as response:
        request_id = response.headers["x-request-id"]
        with pytest.raises(openai.APIError) as caught:
            drain(iter(response.parse()))
    assert "".join(received) == "Hello "
    assert "ended unexpectedly" in caught.value.message
    r = gw.one(request_id, wait=2)
    assert (r.stream_end, r.reasons) == (
        "upstream_broken",
        ["upstream.error", "upstream.broken_stream"],
    )


def test_openai_stream_without_finish_ends_the_anthropic_stream_with_an_error(
    gw: AuditedGateway, upstream: FakeUpstream
) -> None:
    chunk = b'data: {"id":"c1","object":"chat.completion.chunk","created":0,"model":"gpt-up","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}\n\n'
    upstream.script("claude-up", Status(500))
    upstream.script("gpt-up", RawStream((chunk, b"data: [DONE]\n\n")))
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        gw.anthropic("to_gpt").messages.stream(
            model="claude-test", max_tokens=5, messages=[{"role": "user", "content": ASK}]
        ) as stream,
    ):
        stream.get_final_message()
    assert (
        isinstance(caught.value.body, dict)
        and caught.value.body["error"]["code"] == "upstream.broken_stream"
    )


# The data boundary applies to translated answers


@pytest.mark.parametrize("stream", [False, True])
def test_masking_applies_to_claude_answers_for_openai_clients(
    gw: AuditedGateway, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", Reply(pieces=("Write ", "to ", "bob@exam", "ple.com ", "today")))
    client = gw.openai("masked_to_claude")
    if stream:
        with client.chat.completions.stream(model="gpt-test", messages=_openai_messages()) as s:
            text = s.get_final_completion().choices[0].message.content
    else:
        text = (
            client.chat.completions.create(model="gpt-test", messages=_openai_messages())
            .choices[0]
            .message.content
        )
    assert text == "Write to <EMAIL_ADDRESS_1> today"


@pytest.mark.parametrize("stream", [False, True])
def test_masking_applies_to_gpt_answers_for_anthropic_clients(
    gw: AuditedGateway, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.script("claude-up", Status(500))
    upstream.script("gpt-up", Reply(pieces=("Write ", "to ", "bob@exam", "ple.com ", "today")))
    client = gw.anthropic("masked_to_gpt")
    kwargs: Any = {
        "model": "claude-test",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "mail alice@example.com please"}],
    }
    if stream:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    # The request's address was the first one masked in this request, the answer's the second.
    assert (
        message.content[0].type == "text"
        and message.content[0].text == "Write to <EMAIL_ADDRESS_2> today"
    )
    # The request was masked before translation: the OpenAI upstream never saw the address.
    assert upstream.received[-1].body["messages"] == [
        {"role": "user", "content": "mail <EMAIL_ADDRESS_1> please"}
    ]


def test_direct_use_of_a_model_of_the_other_api(gw: AuditedGateway, upstream: FakeUpstream) -> None:
    upstream.script("claude-up", Reply("direct"))
    answer = gw.openai("to_gpt").chat.completions.create(
        model="claude-test", messages=_openai_messages()
    )
    assert answer.choices[0].message.content == "direct"
    assert [m.id for m in gw.openai("to_gpt").models.list()] == ["claude-test"]


@pytest.mark.parametrize("stream", [False, True])
def test_tokens_sent_to_claude_are_restored_for_the_openai_client(
    gw: AuditedGateway, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.script("gpt-up", Status(500))  # claude-up echoes the last user message
    client = gw.openai("tokens_to_claude")
    messages: Any = [{"role": "user", "content": "mail alice@example.com"}]
    if stream:
        with client.chat.completions.stream(model="gpt-test", messages=messages) as s:
            text = s.get_final_completion().choices[0].message.content
    else:
        text = (
            client.chat.completions.create(model="gpt-test", messages=messages)
            .choices[0]
            .message.content
        )
    sent = upstream.received[-1].body["messages"][0]["content"][0]["text"]
    assert "alice@example.com" not in sent and sent.startswith("mail <EMAIL_ADDRESS#")
    assert text == "echo: mail alice@example.com"


@pytest.mark.parametrize("stream", [False, True])
def test_quality_checks_read_the_translated_answer(
    gw: AuditedGateway, upstream: FakeUpstream, stream: bool
) -> None:
    # The gateway asks OpenAI for logprobs for min_avg_logprob; Claude has none to give, so the
    # request goes without them (no 400) and the pattern check runs on the translated text.
    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", Reply(pieces=("Sunny ", "and ", "mild")))
    client = gw.openai("checked_to_claude")
    if stream:
        with client.chat.completions.stream(model="gpt-test", messages=_openai_messages()) as s:
            text = s.get_final_completion().choices[0].message.content
    else:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=_openai_messages()
        )
        text = raw.parse().choices[0].message.content
        assert "quality.unchecked" in gw.one(raw.headers["x-request-id"], wait=2).reasons
    assert text == "Sunny and mild"
    assert upstream.received[0].body["logprobs"] is True  # asked of the OpenAI model
    assert "logprobs" not in upstream.received[-1].body


def test_a_translated_answer_that_fails_its_check_is_not_passed_on(
    gw: AuditedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", Reply("Rainy all day"))
    with pytest.raises(openai.APIStatusError) as caught:
        gw.openai("checked_to_claude").chat.completions.create(
            model="gpt-test", messages=_openai_messages()
        )
    assert "Rainy" not in caught.value.response.text
    assert (caught.value.status_code, caught.value.code) == (502, "quality.pattern_failed")


class Forecast(BaseModel):
    city: str
    celsius: int


@pytest.mark.parametrize("stream", [False, True])
def test_openai_structured_output_from_claude(
    gw: AuditedGateway, upstream: FakeUpstream, stream: bool
) -> None:
    """A JSON-schema ``response_format`` falls back to Claude as a forced answer tool; the
    SDK's ``parse`` reads the tool's input as the message content."""
    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", ToolCall(ANSWER_TOOL, ('{"city": "Paris",', ' "celsius": 18}')))
    client = gw.openai("to_claude")
    if stream:
        with client.chat.completions.stream(
            model="gpt-test", messages=_openai_messages(), response_format=Forecast
        ) as s:
            final = s.get_final_completion()
    else:
        final = client.chat.completions.parse(
            model="gpt-test", messages=_openai_messages(), response_format=Forecast
        )
    choice = final.choices[0]
    assert choice.message.parsed == Forecast(city="Paris", celsius=18)
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    sent = upstream.received[-1]
    assert sent.path == "/v1/messages"
    assert [t["name"] for t in sent.body["tools"]] == [ANSWER_TOOL]
    assert sent.body["tool_choice"] == {"type": "tool", "name": ANSWER_TOOL}


def test_anthropic_structured_output_from_gpt(gw: AuditedGateway, upstream: FakeUpstream) -> None:
    """Anthropic's ``output_config.format`` falls back to GPT as a strict JSON-schema
    ``response_format``; the JSON text comes back as the message's text."""
    upstream.script("claude-up", Status(503))
    upstream.script("gpt-up", Reply('{"city": "Paris", "celsius": 18}'))
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
        "required": ["city", "celsius"],
        "additionalProperties": False,
    }
    message = gw.anthropic("to_gpt").messages.create(
        model="claude-test",
        max_tokens=100,
        messages=[{"role": "user", "content": ASK}],
        extra_body={"output_config": {"format": {"type": "json_schema", "schema": schema}}},
    )
    assert message.content[0].type == "text"
    assert json.loads(message.content[0].text) == {"city": "Paris", "celsius": 18}
    sent = upstream.received[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
