"""The mock provider's tool calls, whole and streamed, in each API's own shape, and its
embeddings (text answers are the surfaces' own writers)."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

import orjson

from gateway.normalized import NormalizedRequest
from gateway.surfaces import ANTHROPIC, OPENAI, RESPONSES
from gateway.surfaces.base import frame
from gateway.surfaces.openai_chat import include_usage
from gateway.surfaces.openai_embeddings import embeddings_body
from gateway.surfaces.openai_responses.answer import (
    function_item,
    response_events,
    response_object,
)

__all__ = ["DIMENSIONS", "embedding", "embeddings", "tool_call"]

DIMENSIONS = 1536  # text-embedding-3-small's


def _pieces(arguments: str) -> list[str]:
    """Argument deltas of a few characters each, as models stream them."""
    return [arguments[i : i + 8] for i in range(0, len(arguments), 8)] or [""]


def tool_call(
    request: NormalizedRequest,
    answer_id: str,
    model: str,
    name: str,
    arguments: str,
    usage: tuple[int, int],
) -> tuple[bytes, list[bytes]]:
    """One call of tool ``name``: the whole body and the stream's events."""
    api, call_id = request.api, "call_" + answer_id[-12:]
    if api == RESPONSES.api:
        item = function_item("fc_" + answer_id[-12:], call_id, name, arguments)
        whole = orjson.dumps(response_object(answer_id, model, [item], usage))
        return whole, response_events(answer_id, model, [(item, _pieces(arguments))], *usage)
    if api == ANTHROPIC.api:
        return _anthropic(answer_id, model, "toolu_" + answer_id[-12:], name, arguments, usage)
    assert api == OPENAI.api
    whole, events = _chat(answer_id, model, call_id, name, arguments, usage)
    return whole, events if include_usage(request.body) else events[:-2] + events[-1:]


def _chat(
    answer_id: str, model: str, call_id: str, name: str, arguments: str, usage: tuple[int, int]
) -> tuple[bytes, list[bytes]]:
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    counts = {
        "prompt_tokens": usage[0],
        "completion_tokens": usage[1],
        "total_tokens": sum(usage),
    }
    head = {"id": answer_id, "created": 0, "model": model}
    whole = {
        **head,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": counts,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return frame(None, {**head, "object": "chat.completion.chunk", "choices": [choice]})

    first = {**call, "index": 0, "function": {"name": name, "arguments": ""}}
    events = [chunk({"role": "assistant", "content": None, "tool_calls": [first]})]
    events += [
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
        for p in _pieces(arguments)
    ]
    events.append(chunk({}, "tool_calls"))
    last = {**head, "object": "chat.completion.chunk", "choices": [], "usage": counts}
    events += [frame(None, last), b"data: [DONE]\n\n"]
    return orjson.dumps(whole), events


def _anthropic(
    answer_id: str, model: str, use_id: str, name: str, arguments: str, usage: tuple[int, int]
) -> tuple[bytes, list[bytes]]:
    block = {"type": "tool_use", "id": use_id, "name": name, "input": orjson.loads(arguments)}

    def message(content: list[Any], stop: str | None, out: int) -> dict[str, Any]:
        return {
            "id": answer_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": out},
        }

    events = [
        frame("message_start", {"type": "message_start", "message": message([], None, 1)}),
        frame(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {**block, "input": {}}},
        ),
    ]
    events += [
        frame(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": p},
            },
        )
        for p in _pieces(arguments)
    ]
    events += [
        frame("content_block_stop", {"type": "content_block_stop", "index": 0}),
        frame(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": usage[1]},
            },
        ),
        frame("message_stop", {"type": "message_stop"}),
    ]
    return orjson.dumps(message([block], "tool_use", usage[1])), events


def embedding(text: str, dimensions: int) -> list[float]:
    """A unit vector drawn from the text's hash: the same text, the same vector."""
    raw = hashlib.shake_256(text.encode()).digest(2 * dimensions)
    values = [
        (int.from_bytes(raw[i : i + 2], "little") - 32768) / 32768 for i in range(0, len(raw), 2)
    ]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def embeddings(request: NormalizedRequest, model: str, tokens_in: int) -> bytes:
    """One vector per input text, of ``dimensions`` (default 1536), as floats or base64."""
    dimensions = request.body.get("dimensions") or DIMENSIONS
    vectors: list[Any] = [
        embedding(slot.text, dimensions) for slot in request.texts if slot.role == "user"
    ]
    if request.body.get("encoding_format") == "base64":
        vectors = [base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() for v in vectors]
    return embeddings_body(model, vectors, tokens_in)
