"""OpenAI Chat Completions: parsing, and errors and model lists in OpenAI's own shapes."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest, SlotKind, TextSlot
from gateway.surfaces.fields import (
    invalid,
    optional_bool,
    optional_int,
    parse_object,
    require_list,
    require_str,
)
from gateway.surfaces.slots import json_string, tool_slots

__all__ = ["error_body", "models_body", "parse", "stream_error"]

# The error "type" OpenAI uses for each status, so SDK users see familiar values.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


# Parts that carry no text the gateway can read, by the name the data policy knows them.
_MEDIA = {"image_url": "image", "input_audio": "audio", "file": "file"}
_KINDS: dict[str, SlotKind] = {
    "system": "system",
    "developer": "system",
    "tool": "tool_result",
    "function": "tool_result",
}


def _content(message: dict[str, Any], i: int, kind: SlotKind, request: NormalizedRequest) -> None:
    role, content = message["role"], message.get("content")
    if isinstance(content, str):
        request.texts.append(TextSlot(role, message, "content", kind))
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise invalid(f"'messages[{i}].content[{j}]' must be a typed content part")
            ptype = part["type"]
            if ptype in ("text", "refusal"):
                if not isinstance(part.get(ptype), str):
                    raise invalid(f"'messages[{i}].content[{j}].{ptype}' must be a string")
                request.texts.append(TextSlot(role, part, ptype, kind))
            else:
                request.media.append(_MEDIA.get(ptype, f"unknown part '{ptype[:32]}'"))
    elif content is not None:
        raise invalid(f"'messages[{i}].content' must be a string or an array of parts")


def _tool_calls(message: dict[str, Any], i: int, request: NormalizedRequest) -> None:
    # Text in a shape the gateway does not read would leave uninspected: such a request is
    # refused here (the provider would refuse it too, after the text had left).
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise invalid(f"'messages[{i}].tool_calls' must be an array")
    functions = (
        [] if calls is None else [(f"tool_calls[{j}].function", c) for j, c in enumerate(calls)]
    )
    if message.get("function_call") is not None:  # the deprecated single-call form
        functions.append(("function_call", {"function": message["function_call"]}))
    for where, call in functions:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("arguments", ""), str):
            raise invalid(f"'messages[{i}].{where}' must be an object with string 'arguments'")
        json_string(
            function,
            "arguments",
            message["role"],
            "tool_arguments",
            request.texts,
            request.json_texts,
        )


def parse(raw: bytes) -> NormalizedRequest:
    body = parse_object(raw)
    model = require_str(body, "model")
    messages = require_list(body, "messages")
    legacy = optional_int(body, "max_tokens")  # both are checked: either may be forwarded
    max_tokens = optional_int(body, "max_completion_tokens") or legacy
    request = NormalizedRequest(
        api="openai_chat",
        body=body,
        model=model,
        stream=optional_bool(body, "stream"),
        max_tokens=max_tokens,
    )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise invalid(f"'messages[{i}]' must be an object with a string 'role'")
        _content(message, i, _KINDS.get(message["role"], "content"), request)
        _tool_calls(message, i, request)
    for key in ("tools", "functions"):
        tools = body.get(key)
        if tools is not None and not isinstance(tools, list):
            raise invalid(f"'{key}' must be an array")
        for j, tool in enumerate(tools or ()):
            function = tool.get("function", tool) if isinstance(tool, dict) else None
            if not isinstance(function, dict):
                raise invalid(f"'{key}[{j}]' must be an object")
            tool_slots(function, "parameters", f"{key}[{j}]", request.texts)
    return request


def _error(err: GatewayError, request_id: str) -> dict[str, Any]:
    return {
        "error": {
            "message": err.message,
            "type": _TYPES.get(err.status, "api_error"),
            "param": None,
            "code": err.reason.code,
            "request_id": request_id,
        }
    }


def error_body(err: GatewayError, request_id: str) -> bytes:
    return orjson.dumps(_error(err, request_id))


def stream_error(err: GatewayError, request_id: str) -> bytes:
    """An in-stream error: the openai SDK raises APIError on a chunk carrying ``error``."""
    return b"data: " + orjson.dumps(_error(err, request_id)) + b"\n\n"


def models_body(models: list[tuple[str, str]]) -> bytes:
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": owner} for name, owner in models
    ]
    return orjson.dumps({"object": "list", "data": data})


def answer_body(answer_id: str, model: str, text: str, tokens_in: int, tokens_out: int) -> bytes:
    """A complete chat completion carrying ``text``, as OpenAI sends it."""
    return orjson.dumps(
        {
            "id": answer_id,
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }
    )


def answer_events(
    answer_id: str,
    model: str,
    pieces: list[str],
    tokens_in: int,
    tokens_out: int,
    include_usage: bool,
) -> list[bytes]:
    """The SSE events of a streamed completion of ``pieces``, ending with ``[DONE]``."""

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": answer_id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": ""}, None)]
    chunks += [chunk({"content": piece}, None) for piece in pieces]
    chunks.append(chunk({}, "stop"))
    if include_usage:
        chunks.append(
            {
                "id": answer_id,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": tokens_in,
                    "completion_tokens": tokens_out,
                    "total_tokens": tokens_in + tokens_out,
                },
            }
        )
    return [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
