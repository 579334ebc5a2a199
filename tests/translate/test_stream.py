"""Streams translated event by event, then accumulated by the official SDKs' own stream
state, so the result is what an SDK user's ``get_final_completion``/``get_final_message``
would see."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from gateway.translate import AnthropicEvents, OpenAIChunks, Untranslatable
from gateway.translate.stream import sse_data
from tests.translate.payloads import anthropic_stream, openai_stream

TEXTS = ["I'll ", "check ", "tomorrow's ", "forecast."]
TOOL = ['{"ci', 'ty": "Par', 'is"}']


def _openai_final(events: list[bytes]) -> tuple[ChatCompletion, list[ChatCompletionChunk]]:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    chunks = []
    assert events[-1] == b"data: [DONE]\n\n"
    for event in events[:-1]:
        data = sse_data(event)
        assert data is not None and event.startswith(b"data: ") and event.endswith(b"\n\n")
        chunk = ChatCompletionChunk.model_validate(orjson.loads(data))
        chunks.append(chunk)
        state.handle_chunk(chunk)
    return state.get_final_completion(), chunks


def _anthropic_final(events: list[bytes]) -> Message:
    snapshot = None
    bufs: dict[int, bytes] = {}
    names = []
    for event in events:
        name, _, rest = event.partition(b"\n")
        assert (
            name.startswith(b"event: ") and rest.startswith(b"data: ") and event.endswith(b"\n\n")
        )
        data = orjson.loads(rest[6:])
        assert data["type"] == name[7:].decode()
        names.append(data["type"])
        snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=bufs)
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert snapshot is not None
    return Message.model_validate(snapshot.model_dump())


def _feed(translator: OpenAIChunks | AnthropicEvents, events: list[bytes]) -> list[bytes]:
    return [out for event in events for out in translator.feed(event)]


@pytest.mark.parametrize("include_usage", [True, False])
def test_anthropic_stream_as_openai_chunks(include_usage: bool) -> None:
    out = _feed(OpenAIChunks(1741569952, include_usage), anthropic_stream(TEXTS, TOOL))
    final, chunks = _openai_final(out)
    choice = final.choices[0]
    assert choice.message.content == "I'll check tomorrow's forecast."
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == (
        "toolu_01B",
        "get_weather",
        '{"city": "Paris"}',
    )
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (512, 57)
    # Usage in its own choice-less chunk only when asked for, as OpenAI does.
    assert (chunks[-1].choices == []) is include_usage
    assert all(c.choices for c in chunks[:-1])
    assert {c.id for c in chunks} == {"msg_01XFDUDYJgAACzvnptvVoYEL"}


@pytest.mark.parametrize("include_usage", [True, False])
def test_openai_stream_as_anthropic_events(include_usage: bool) -> None:
    out = _feed(AnthropicEvents(), openai_stream(TEXTS, TOOL, include_usage))
    final = _anthropic_final(out)
    text, tool = final.content
    assert text.type == "text" and text.text == "I'll check tomorrow's forecast."
    assert tool.type == "tool_use" and (tool.id, tool.name, tool.input) == (
        "call_def456",
        "get_weather",
        {"city": "Paris"},
    )
    assert final.stop_reason == "tool_use"
    # The usage chunk comes after the finish chunk: message_delta waits for it.
    expected = (512, 57) if include_usage else (0, 0)
    assert (final.usage.input_tokens, final.usage.output_tokens) == expected


def test_text_only_streams_both_ways() -> None:
    final, _ = _openai_final(_feed(OpenAIChunks(0, False), anthropic_stream(TEXTS, [])))
    assert (
        final.choices[0].message.content == "".join(TEXTS)
        and final.choices[0].finish_reason == "stop"
    )
    message = _anthropic_final(_feed(AnthropicEvents(), openai_stream(TEXTS, [])))
    assert [b.type for b in message.content] == ["text"] and message.stop_reason == "end_turn"


def test_two_hundred_events_each_translated_as_it_arrives() -> None:
    pieces = [f"w{i} " for i in range(200)]
    translator = OpenAIChunks(0, True)
    events = anthropic_stream(pieces, [])
    per_event = [translator.feed(e) for e in events]
    deltas = per_event[3 : 3 + 200]
    assert all(len(out) == 1 for out in deltas)  # nothing buffered: one chunk per delta
    final, _ = _openai_final([o for out in per_event for o in out])
    assert final.choices[0].message.content == "".join(pieces)


def test_parallel_tool_calls_from_openai() -> None:
    events = openai_stream(["Two calls."], TOOL)
    second = {
        "index": 1,
        "id": "call_2",
        "type": "function",
        "function": {"name": "get_time", "arguments": "{}"},
    }
    extra = b"data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                     "choices": [{"index": 0, "delta": {"tool_calls": [second]}, "finish_reason": None}]}) + b"\n\n"  # fmt: skip
    events.insert(-3, extra)  # after the first call's arguments, before the finish chunk
    message = _anthropic_final(_feed(AnthropicEvents(), events))
    assert [(b.type, getattr(b, "name", None)) for b in message.content] == [
        ("text", None),
        ("tool_use", "get_weather"),
        ("tool_use", "get_time"),
    ]
    assert message.content[2].input == {}  # type: ignore[union-attr]


def _anthropic_event(data: dict[str, Any]) -> bytes:
    return b"event: " + data["type"].encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@pytest.mark.parametrize(
    "bad",
    [
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "thinking", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "citations_delta", "citation": {}},
        },
        {
            "type": "content_block_delta",
            "index": 5,
            "delta": {"type": "input_json_delta", "partial_json": "{"},
        },
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        {"type": "brand_new_event"},
    ],
)
def test_unknown_anthropic_events_end_the_stream(bad: dict[str, Any]) -> None:
    translator = OpenAIChunks(0, False)
    events = anthropic_stream(TEXTS, [])
    for event in events[:4]:
        translator.feed(event)
    with pytest.raises(Untranslatable):
        translator.feed(_anthropic_event(bad))


def test_anthropic_stream_without_stop_reason_is_not_a_success() -> None:
    translator = OpenAIChunks(0, False)
    with pytest.raises(Untranslatable):
        _feed(translator, [e for e in anthropic_stream(TEXTS, []) if b"message_delta" not in e])


@pytest.mark.parametrize(
    "bad",
    [
        {"choices": [{"index": 1, "delta": {"content": "x"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"reasoning_content": "hm"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"audio": {"id": "a"}}, "finish_reason": None}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 3, "function": {"arguments": "{"}}]},
                    "finish_reason": None,
                }
            ]
        },
        {"error": {"message": "The server had an error", "type": "server_error"}},
    ],
)
def test_unknown_openai_chunks_end_the_stream(bad: dict[str, Any]) -> None:
    translator = AnthropicEvents()
    _feed(translator, openai_stream(TEXTS, [])[:2])
    with pytest.raises(Untranslatable):
        translator.feed(b"data: " + orjson.dumps(bad) + b"\n\n")


def test_openai_stream_cut_before_finish_is_not_a_success() -> None:
    events = openai_stream(TEXTS, [])
    translator = AnthropicEvents()
    _feed(translator, events[:3])
    with pytest.raises(Untranslatable):
        translator.feed(b"data: [DONE]\n\n")


def test_not_json_fails_closed() -> None:
    with pytest.raises(Untranslatable):
        AnthropicEvents().feed(b"data: {not json\n\n")
    with pytest.raises(Untranslatable):
        OpenAIChunks(0, False).feed(b"event: message_start\ndata: [1]\n\n")


def test_comments_and_multi_line_data() -> None:
    assert OpenAIChunks(0, False).feed(b": keep-alive\n\n") == []
    assert sse_data(b'event: x\ndata: {"a":\ndata: 1}\n\n') == b'{"a":\n1}'
