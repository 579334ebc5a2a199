"""Tool holds on streamed answers: a workflow whose ``review.on`` names ``tool:NAME`` has its
streams read whole before a byte reaches the client (as ``quality.streaming: buffer`` does),
so an answer calling that tool can be held like a whole one.

A held stream is kept as the whole answer it adds up to, in the API's own (non-streamed)
shape: that is what the app's poll and the webhook return once it is approved, as for a
request that did not stream.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.context import RequestContext
from gateway.quality.read import read_stream
from gateway.surfaces import Surface
from gateway.surfaces.base import event_parts
from gateway.upstream.provider import UpstreamResponse
from gateway.upstream.usage import note_usage

__all__ = ["assemble", "buffered", "event_data"]


async def buffered(
    ctx: RequestContext, surface: Surface, response: UpstreamResponse
) -> list[bytes]:
    """Every event of the stream, its usage noted; a broken stream raises
    ``upstream.broken_stream`` (nothing has reached the client: a fallback may answer)."""
    assert response.events is not None
    try:
        _, held, reader = await read_stream(surface, response.events, strip=False)
    finally:
        await response.aclose()
    note_usage(ctx, reader)
    return held


def event_data(events: list[bytes]) -> list[dict[str, Any]]:
    """The JSON object of each event (``[DONE]`` and comments have none)."""
    out = []
    for event in events:
        _, data = event_parts(event)
        if data is None or not data.startswith(b"{"):
            continue
        parsed = orjson.loads(data)
        if isinstance(parsed, dict):
            out.append(parsed)
    return out


def assemble(api: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole answer a stream's events add up to, in ``api``'s non-streamed shape."""
    if api == "anthropic_messages":
        return _message(events)
    if api == "openai_responses":
        done = [e for e in events if e.get("type") == "response.completed"]
        response: dict[str, Any] = done[-1]["response"]
        return response
    return _chat(events)


def _chat(events: list[dict[str, Any]]) -> dict[str, Any]:
    whole: dict[str, Any] = {"object": "chat.completion", "choices": []}
    choices: dict[int, dict[str, Any]] = {}
    for event in events:
        for key in ("id", "created", "model", "system_fingerprint", "usage"):
            if event.get(key) is not None:
                whole[key] = event[key]
        for chunk in event.get("choices") or ():
            index = chunk.get("index", 0)
            choice = choices.setdefault(index, {"index": index, "message": {"role": "assistant",
                                        "content": None}, "finish_reason": None})  # fmt: skip
            message, delta = choice["message"], chunk.get("delta") or {}
            if delta.get("content"):
                message["content"] = (message["content"] or "") + delta["content"]
            for call in delta.get("tool_calls") or ():
                calls = message.setdefault("tool_calls", [])
                at = call.get("index", len(calls))
                while len(calls) <= at:
                    calls.append({"id": None, "type": "function",
                                  "function": {"name": "", "arguments": ""}})  # fmt: skip
                function = call.get("function") or {}
                calls[at]["id"] = call.get("id") or calls[at]["id"]
                calls[at]["function"]["name"] += function.get("name") or ""
                calls[at]["function"]["arguments"] += function.get("arguments") or ""
            if chunk.get("finish_reason"):
                choice["finish_reason"] = chunk["finish_reason"]
    whole["choices"] = [choices[i] for i in sorted(choices)]
    return whole


def _message(events: list[dict[str, Any]]) -> dict[str, Any]:
    whole: dict[str, Any] = {}
    blocks: dict[int, dict[str, Any]] = {}
    partial: dict[int, str] = {}
    for event in events:
        kind = event.get("type")
        if kind == "message_start":
            whole = dict(event["message"])
        elif kind == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
        elif kind == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            if delta.get("type") == "input_json_delta":
                partial[event["index"]] = partial.get(event["index"], "") + delta["partial_json"]
            for key in ("text", "thinking", "signature"):
                if key in delta:
                    block[key] = block.get(key, "") + delta[key]
        elif kind == "message_delta":
            whole.update(event.get("delta") or {})
            whole["usage"] = {**whole.get("usage", {}), **(event.get("usage") or {})}
    for index, text in partial.items():
        blocks[index]["input"] = orjson.loads(text) if text else {}
    whole["content"] = [blocks[i] for i in sorted(blocks)]
    return whole
