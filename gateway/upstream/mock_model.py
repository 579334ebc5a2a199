"""What the mock provider decides to answer, read from the request in each API's shape.

Deterministic rules, so clients' features work with no key: a tool call when tools are offered
and the last user turn names a tool or says "call"/"use"; a minimal valid instance when a JSON
schema is asked for (``response_format``, ``text.format``, ``output_format``,
``output_config.format``); otherwise the quote of the last user message. The mock sits at
the provider edge, where each API is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Plan", "instance", "plan"]

_ASKS = re.compile(r"\b(call|use|using)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Plan:
    """A tool call (``tool`` and its ``arguments`` JSON) or a JSON answer (``json``)."""

    tool: str | None = None
    arguments: dict[str, Any] | None = None
    json: Any = None
    is_json: bool = False


def _tools(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, parameter schema) of every function tool, in any of the three shapes."""
    out = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        inner = tool.get("function")
        function: dict[str, Any] = inner if isinstance(inner, dict) else tool
        name = function.get("name")
        if isinstance(name, str) and tool.get("type", "function") in ("function", "custom"):
            schema = function.get("parameters", function.get("input_schema"))
            out.append((name, schema if isinstance(schema, dict) else {}))
        elif isinstance(name, str) and "input_schema" in tool:  # Anthropic: no type
            out.append((name, tool["input_schema"]))
    return out


def _last_turn_is_user(body: dict[str, Any]) -> bool:
    """A tool loop ends: after a tool result the mock answers in text."""
    turns = body.get("messages", body.get("input"))
    if isinstance(turns, str):
        return True
    if not isinstance(turns, list) or not turns or not isinstance(turns[-1], dict):
        return False
    last = turns[-1]
    if last.get("role") != "user" or last.get("type", "message") != "message":
        return False
    content = last.get("content")
    return not (
        isinstance(content, list)
        and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
    )


def _schema(body: dict[str, Any]) -> tuple[bool, Any]:
    """Whether JSON is asked for, and its schema (None: any object)."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), dict):
            return True, fmt["json_schema"].get("schema")
        return fmt.get("type") == "json_object", None
    text, config = body.get("text"), body.get("output_config")
    fmt = text.get("format") if isinstance(text, dict) else body.get("output_format")
    if fmt is None and isinstance(config, dict):  # Anthropic's structured outputs, GA
        fmt = config.get("format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
        return True, fmt.get("schema")
    return False, None


def plan(body: dict[str, Any], last_user: str) -> Plan:
    tools = _tools(body)
    choice = body.get("tool_choice")
    forced = choice in ("required", "any") or (
        isinstance(choice, dict) and choice.get("type") in ("function", "tool", "any")
    )
    if tools and choice != "none" and (forced or _last_turn_is_user(body)):
        named = [t for t in tools if t[0] in last_user]
        if isinstance(choice, dict):
            wanted = choice.get("name") or (choice.get("function") or {}).get("name")
            named = [t for t in tools if t[0] == wanted] or named
        if named or forced or _ASKS.search(last_user):
            name, schema = (named or tools)[0]
            arguments = instance(schema, schema)
            return Plan(tool=name, arguments=arguments if isinstance(arguments, dict) else {})
    asked, schema = _schema(body)
    if asked:
        return Plan(json=instance(schema, schema) if schema else {}, is_json=True)
    return Plan()


def instance(schema: Any, root: Any, depth: int = 0) -> Any:
    """A minimal value valid for ``schema`` (``$ref``s resolved in ``root``)."""
    if not isinstance(schema, dict) or depth > 16:
        return {}
    if "$ref" in schema and isinstance(schema["$ref"], str):
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return instance(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return instance((usable or options)[0], root, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else None)
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties")
        props = properties if isinstance(properties, dict) else {}
        return {name: instance(sub, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        count = schema.get("minItems", 0)
        item = schema.get("items", {})
        return [
            instance(item, root, depth + 1) for _ in range(count if isinstance(count, int) else 0)
        ]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low if isinstance(low, int | float) else 0
        return value + 1 if "exclusiveMinimum" in schema else value
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if kind == "string":
        length = schema.get("minLength", 0)
        return "mock".ljust(length if isinstance(length, int) else 0, "k")
    return {}
