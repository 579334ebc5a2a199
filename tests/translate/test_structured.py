"""Structured outputs across providers: a JSON-schema answer asked of an Anthropic model
becomes a forced tool whose input is the answer's text (whole and streamed), Anthropic's own
structured outputs become OpenAI's, and what has no counterpart is refused."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest

from gateway.errors import GatewayError
from gateway.translate import (
    ANSWER_TOOL,
    OpenAIChunks,
    anthropic_request,
    openai_answer,
    openai_request,
)

HI = [{"role": "user", "content": "what is the weather in Paris?"}]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
    "required": ["city", "celsius"],
    "additionalProperties": False,
}
FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True},
}
LOOKUP = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


def _asked(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": HI, "response_format": FORMAT, **extra}


def test_a_json_schema_becomes_a_forced_answer_tool() -> None:
    body = _asked()
    kept = copy.deepcopy(body)
    out = anthropic_request(body)
    assert body == kept  # never mutated
    (tool,) = out["tools"]
    assert (tool["name"], tool["input_schema"]) == (ANSWER_TOOL, SCHEMA)
    assert out["tool_choice"] == {"type": "tool", "name": ANSWER_TOOL}
    assert "response_format" not in out


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (None, None, {"type": "any"}),
        ("auto", None, {"type": "any"}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", None, {"type": "tool", "name": ANSWER_TOOL}),
        (
            {"type": "function", "function": {"name": "lookup"}},
            None,
            {"type": "tool", "name": "lookup"},
        ),
    ],
)
def test_with_the_clients_own_tools_the_model_must_call_one_or_answer(
    choice: Any, parallel: Any, expected: dict[str, Any]
) -> None:
    out = anthropic_request(
        _asked(tools=[LOOKUP], tool_choice=choice, parallel_tool_calls=parallel)
    )
    assert [t["name"] for t in out["tools"]] == ["lookup", ANSWER_TOOL]
    assert out["tool_choice"] == expected


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"response_format": {"type": "json_object"}}, "'response_format' of type 'json_object'"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}}},
            "root is not an object",
        ),
        (
            {
                "response_format": FORMAT,
                "tools": [{"type": "function", "function": {"name": ANSWER_TOOL}}],
            },
            f"A tool named '{ANSWER_TOOL}'",
        ),
    ],
)  # fmt: skip
def test_what_has_no_counterpart_is_refused(body: dict[str, Any], named: str) -> None:
    with pytest.raises(GatewayError) as caught:
        anthropic_request({"model": "m", "messages": HI, **body})
    assert caught.value.reason.code == "translate.unsupported"
    assert named in caught.value.message


ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude",
    "content": [
        {"type": "tool_use", "id": "toolu_1", "name": ANSWER_TOOL, "input": {"city": "Paris", "celsius": 18}}
    ],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 10, "output_tokens": 7},
}  # fmt: skip


def test_the_answer_tools_input_is_the_answers_text() -> None:
    choice = openai_answer(ANSWER, 0, ANSWER_TOOL)["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"city": "Paris", "celsius": 18}
    assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"
    # Without a schema asked for, a tool of that name is a tool call like any other.
    plain = openai_answer(ANSWER, 0)["choices"][0]
    assert plain["finish_reason"] == "tool_calls"
    assert plain["message"]["tool_calls"][0]["function"]["name"] == ANSWER_TOOL


def test_a_call_to_the_clients_tool_stays_a_tool_call() -> None:
    answer = {**ANSWER, "content": [{"type": "tool_use", "id": "t", "name": "lookup", "input": {}}]}
    choice = openai_answer(answer, 0, ANSWER_TOOL)["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _stream(name: str) -> list[bytes]:
    start = {**ANSWER, "content": [], "stop_reason": None}
    block = {"type": "tool_use", "id": "toolu_1", "name": name, "input": {}}
    pieces = ['{"city": ', '"Paris", "cel', 'sius": 18}']
    return [
        _sse("message_start", {"type": "message_start", "message": start}),
        _sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        *[
            _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                         "delta": {"type": "input_json_delta", "partial_json": p}})
            for p in pieces
        ],
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                               "usage": {"output_tokens": 7}}),
        _sse("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip


def _chunks(events: list[bytes], answer_tool: str | None) -> list[dict[str, Any]]:
    chunks = OpenAIChunks(0, include_usage=False, answer_tool=answer_tool)
    out = [c for e in events for c in chunks.feed(e)]
    return [orjson.loads(c[6:]) for c in out if c != b"data: [DONE]\n\n"]


def test_a_streamed_answer_tool_call_streams_as_text() -> None:
    chunks = _chunks(_stream(ANSWER_TOOL), ANSWER_TOOL)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert not any("tool_calls" in d for d in deltas)
    text = "".join(d.get("content") or "" for d in deltas)
    assert json.loads(text) == {"city": "Paris", "celsius": 18}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # The client's own tool, streamed: tool-call deltas as before.
    other = _chunks(_stream("lookup"), ANSWER_TOOL)
    assert other[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert other[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "lookup"


@pytest.mark.parametrize(
    "field",
    [
        {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
        {"output_format": {"type": "json_schema", "schema": SCHEMA}},
    ],
)
def test_anthropics_structured_outputs_become_a_strict_response_format(
    field: dict[str, Any],
) -> None:
    out = openai_request({"model": "m", "max_tokens": 50, "messages": HI, **field})
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }


@pytest.mark.parametrize(
    "field",
    [
        {"output_config": {"effort": "high"}},
        {
            "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
            "output_format": {},
        },
        {"output_format": {"type": "text"}},
    ],
)
def test_anthropic_output_settings_without_a_counterpart_are_refused(
    field: dict[str, Any],
) -> None:
    with pytest.raises(GatewayError) as caught:
        openai_request({"model": "m", "max_tokens": 50, "messages": HI, **field})
    assert caught.value.reason.code == "translate.unsupported"
