"""Anthropic Messages: parsing, and errors and model lists in Anthropic's own shapes."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError
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

__all__ = ["error_body", "models_body", "parse", "stream_error"]

# Anthropic's documented error types per status; the SDK picks its exception by status.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


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
        api="anthropic_messages",
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
    for j, tool in enumerate(tools or ()):
        if not isinstance(tool, dict):
            raise invalid(f"'tools[{j}]' must be an object")
        tool_slots(tool, "input_schema", f"tools[{j}]", request.texts)
    return request


def _error(err: GatewayError, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {
            "type": _TYPES.get(err.status, "api_error"),
            "message": err.message,
            "code": err.reason.code,
        },
        "request_id": request_id,
    }


def error_body(err: GatewayError, request_id: str) -> bytes:
    return orjson.dumps(_error(err, request_id))


def stream_error(err: GatewayError, request_id: str) -> bytes:
    """An in-stream ``error`` event, which the anthropic SDK raises as an APIStatusError."""
    return b"event: error\ndata: " + orjson.dumps(_error(err, request_id)) + b"\n\n"


def models_body(models: list[tuple[str, str]]) -> bytes:
    data = [
        {"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}
        for name, _ in models
    ]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return orjson.dumps({"data": data, "has_more": False, "first_id": first, "last_id": last})


def _message(
    answer_id: str,
    model: str,
    content: list[dict[str, Any]],
    stop: str | None,
    tokens_in: int,
    tokens_out: int,
) -> dict[str, Any]:
    return {
        "id": answer_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }


def answer_body(answer_id: str, model: str, text: str, tokens_in: int, tokens_out: int) -> bytes:
    """A complete message carrying ``text``, as Anthropic sends it."""
    return orjson.dumps(
        _message(
            answer_id, model, [{"type": "text", "text": text}], "end_turn", tokens_in, tokens_out
        )
    )


def answer_events(
    answer_id: str,
    model: str,
    pieces: list[str],
    tokens_in: int,
    tokens_out: int,
) -> list[bytes]:
    """The named SSE events of a streamed message of ``pieces``, as Anthropic sends them."""
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": _message(answer_id, model, [], None, tokens_in, 1),
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    events += [
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
        )
        for piece in pieces
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": tokens_out},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        for name, data in events
    ]
