"""The text of a chat.completion.chunk stream through the boundary's channels, chunk by
chunk; a chunk of a shape not known here ends the stream (fail closed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.surfaces.base import Channels, frame, shape_error, text_event

__all__ = ["rewrite_stream"]

Channel = tuple[int, str, int]

# Delta fields that carry text (some compatible servers stream their reasoning).
_TEXT = frozenset({"content", "refusal", "reasoning_content", "reasoning"})


async def rewrite_stream(channels: Channels, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    template: dict[str, Any] = {}
    async for event in events:
        _, data = text_event(event)
        if data is None:
            yield event
            continue
        if data.strip() == "[DONE]":
            for index in channels.pending():  # a stream that never said finish_reason
                yield frame(None, await _flush(channels, index, template, {}))
            yield event
            continue
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise shape_error("a data line that is not JSON") from None
        if not isinstance(chunk, dict) or "error" in chunk:
            if isinstance(chunk, dict):
                yield event
                continue
            raise shape_error("a chunk that is not an object")
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise shape_error("a chunk without choices")
        template = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
        for choice in choices:
            if not isinstance(choice, dict) or not isinstance(choice.get("delta"), dict):
                raise shape_error("a choice without a delta")
            index = choice.get("index", 0)
            delta = choice["delta"]
            for key, value in list(delta.items()):
                if value is None or key == "role":
                    continue
                if key in _TEXT and isinstance(value, str):
                    delta[key] = await channels.feed((index, key, 0), value)
                elif key == "tool_calls" and isinstance(value, list):
                    for call in value:
                        if not isinstance(call, dict):
                            raise shape_error("a tool call that is not an object")
                        await _feed_function(channels, (index, "tool", call.get("index", 0)), call)
                elif key == "function_call":  # the deprecated single-call form
                    await _feed_function(channels, (index, "function", 0), delta)
                else:
                    raise shape_error(f"delta field {key[:32]}")
            if choice.get("finish_reason") is not None:
                for (_, key, call_index), rest in await channels.finish(index):
                    _put(delta, key, call_index, rest)
        yield frame(None, chunk)


async def _feed_function(channels: Channels, channel: Channel, holder: Any) -> None:
    key = "function" if channel[1] == "tool" else "function_call"
    function = holder.get(key) if isinstance(holder, dict) else None
    if not isinstance(function, dict):
        raise shape_error(f"a {key} that is not an object")
    if isinstance(function.get("arguments"), str):
        function["arguments"] = await channels.feed(channel, function["arguments"])


def _put(delta: dict[str, Any], key: str, call_index: int, text: str) -> None:
    if key == "tool":
        calls = delta.setdefault("tool_calls", [])
        calls.append({"index": call_index, "function": {"arguments": text}})
    elif key == "function":
        delta["function_call"] = {"arguments": text}
    else:
        delta[key] = (delta.get(key) or "") + text


async def _flush(
    channels: Channels, index: int, template: dict[str, Any], delta: dict[str, Any]
) -> dict[str, Any]:
    for (_, key, call_index), rest in await channels.finish(index):
        _put(delta, key, call_index, rest)
    return {**template, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}
