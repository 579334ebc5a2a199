"""Anthropic Messages requests: parsing into a NormalizedRequest, and the knobs steps turn
on the body (the output ceiling; usage, logprobs and no-store need none)."""

from __future__ import annotations

from typing import Any

from gateway.normalized import NormalizedRequest, SlotKind, TextSlot, json_leaves
from gateway.surfaces.fields import (
    invalid,
    optional_bool,
    optional_int,
    parse_object,
    require_list,
    require_str,
)
from gateway.surfaces.slots import tool_slots

__all__ = [
    "API",
    "ask_logprobs",
    "ask_no_store",
    "ask_usage_in_stream",
    "output_ceilings",
    "parse",
    "set_output_ceiling",
]

API = "anthropic_messages"

# Blocks whose content a signature protects: forwarded exactly as the model wrote them.
_SIGNED = frozenset({"thinking", "redacted_thinking"})


def _blocks(
    role: str,
    holder: dict[str, Any],
    key: str,
    where: str,
    kind: SlotKind,
    request: NormalizedRequest,
) -> None:
    content = holder.get(key)
    if isinstance(content, str):
        request.texts.append(TextSlot(role, holder, key, kind))
        return
    if not isinstance(content, list):
        raise invalid(f"'{where}' must be a string or an array of content blocks")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid(f"'{where}[{j}]' must be a typed content block")
        btype = block["type"]
        if btype == "text":
            if not isinstance(block.get("text"), str):
                raise invalid(f"'{where}[{j}].text' must be a string")
            request.texts.append(TextSlot(role, block, "text", kind))
        elif btype == "tool_use":
            if not isinstance(block.get("input"), dict):
                raise invalid(f"'{where}[{j}].input' must be an object")
            json_leaves(block["input"], role, "tool_arguments", request.texts)
        elif btype == "tool_result":
            if block.get("content") is not None:
                _blocks(role, block, "content", f"{where}[{j}].content", "tool_result", request)
        elif btype == "document" and _text_source(block):
            request.texts.append(TextSlot(role, block["source"], "data", kind))
        elif btype == "image":
            request.media.append("image")
        elif btype not in _SIGNED:
            request.media.append(
                "document" if btype == "document" else f"unknown block '{btype[:32]}'"
            )


def _text_source(block: dict[str, Any]) -> bool:
    source = block.get("source")
    return (
        isinstance(source, dict)
        and source.get("type") == "text"
        and isinstance(source.get("data"), str)
    )


def parse(raw: bytes) -> NormalizedRequest:
    body = parse_object(raw)
    model = require_str(body, "model")
    messages = require_list(body, "messages")
    max_tokens = optional_int(body, "max_tokens")
    if max_tokens is None:
        raise invalid("'max_tokens' is required")
    request = NormalizedRequest(
        api=API,
        body=body,
        model=model,
        stream=optional_bool(body, "stream"),
        max_tokens=max_tokens,
    )
    if body.get("system") is not None:
        _blocks("system", body, "system", "system", "system", request)
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise invalid(f"'messages[{i}]' must be an object with role 'user' or 'assistant'")
        _blocks(message["role"], message, "content", f"messages[{i}].content", "content", request)
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise invalid("'tools' must be an array")
    request.tools = bool(tools)
    for j, tool in enumerate(tools or ()):
        if not isinstance(tool, dict):
            raise invalid(f"'tools[{j}]' must be an object")
        tool_slots(tool, "input_schema", f"tools[{j}]", request.texts)
    return request


def output_ceilings(request: NormalizedRequest) -> list[tuple[str, int]]:
    value = request.body.get("max_tokens")
    return [] if value is None else [("max_tokens", value)]


def set_output_ceiling(request: NormalizedRequest, limit: int) -> bool:
    value = request.body.get("max_tokens")
    if value is not None and value <= limit:
        return False
    request.body["max_tokens"] = request.max_tokens = limit
    return True


def ask_usage_in_stream(request: NormalizedRequest) -> bool:
    """Every stream reports its usage (``message_start``, ``message_delta``)."""
    return False


def ask_logprobs(request: NormalizedRequest) -> bool:
    """The Messages API has no logprobs: the confidence check finds none and says so."""
    return False


def ask_no_store(request: NormalizedRequest) -> None:
    """No such field: Anthropic does not keep API traffic for reuse by default."""
