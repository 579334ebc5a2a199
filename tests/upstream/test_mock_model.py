"""The mock's rules: when it calls a tool, and the smallest instance it writes for a schema."""

from __future__ import annotations

from typing import Any

import fastjsonschema
import pytest

from gateway.upstream.mock_model import instance, plan

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"a": {"type": "string", "minLength": 6}}},
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}, "x": {"type": "number", "exclusiveMinimum": 0}}},
    {"type": "object", "properties": {"kind": {"enum": ["b", "c"]}, "k": {"const": 7}}},
    {"type": "object", "properties": {"o": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}}},
    {"type": "array", "items": {"type": "string"}, "minItems": 2},
    {"$defs": {"P": {"type": "object", "properties": {"v": {"type": ["string", "null"]}}, "required": ["v"]}},
     "type": "object", "properties": {"p": {"$ref": "#/$defs/P"}}, "required": ["p"]},
]  # fmt: skip


@pytest.mark.parametrize("schema", SCHEMAS)
def test_the_instance_is_valid_for_its_schema(schema: dict[str, Any]) -> None:
    fastjsonschema.compile(schema)(instance(schema, schema))


TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]


@pytest.mark.parametrize(
    ("body", "tool"),
    [
        ({"messages": [{"role": "user", "content": "get_weather in Rome"}], "tools": TOOLS}, "get_weather"),
        ({"messages": [{"role": "user", "content": "please use a tool"}], "tools": TOOLS}, "get_weather"),
        ({"messages": [{"role": "user", "content": "hello"}], "tools": TOOLS}, None),
        ({"messages": [{"role": "user", "content": "use it"}], "tools": TOOLS, "tool_choice": "none"}, None),
        ({"messages": [{"role": "tool", "content": "sunny"}], "tools": TOOLS}, None),
        ({"messages": [{"role": "user", "content": "hi"}], "tools": TOOLS, "tool_choice": "required"}, "get_weather"),
        ({"input": "call get_weather", "tools": [{"type": "function", "name": "get_weather"}]}, "get_weather"),
        ({"input": [{"type": "function_call_output", "output": "x"}], "tools": [{"type": "function", "name": "f"}]}, None),
        ({"messages": [{"role": "user", "content": "call x"}], "tools": [{"name": "x", "input_schema": {}}]}, "x"),
    ],
)  # fmt: skip
def test_a_tool_is_called_only_when_asked(body: dict[str, Any], tool: str | None) -> None:
    last = body.get("input") if isinstance(body.get("input"), str) else ""
    messages = body.get("messages") or []
    if messages and isinstance(messages[-1].get("content"), str) and messages[-1]["role"] == "user":
        last = messages[-1]["content"]
    assert plan(body, str(last)).tool == tool


def test_json_is_written_for_each_api_s_schema_field() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    chat = {"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
    responses = {"text": {"format": {"type": "json_schema", "schema": schema}}}
    anthropic = {"output_format": {"type": "json_schema", "schema": schema}}
    for body in (chat, responses, anthropic):
        assert plan(body, "hi").json == {"n": 0}
    assert plan({"response_format": {"type": "json_object"}}, "hi").json == {}
    assert not plan({}, "hi").is_json


def test_json_is_written_for_anthropics_generally_available_structured_outputs() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    body = {"output_config": {"format": {"type": "json_schema", "schema": schema}}}
    assert plan(body, "hi").json == {"n": 0}
    assert not plan({"output_config": {"effort": "high"}}, "hi").is_json
