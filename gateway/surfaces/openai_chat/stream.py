"""The text of a chat.completion.chunk stream through the boundary's channels, chunk by
chunk; a chunk of a shape not known here ends the stream (fail closed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.surfaces.base import Channels, clean_event, frame, shape_error, text_event
from gateway.surfaces.total import NonText, inspect_leaves, nontext

__all__ = ["rewrite_stream"]

Channel = tuple[int, str, int]

# Delta fields that carry text (some compatible servers stream their reasoning).
_TEXT = frozenset({"content", "refusal", "reasoning_content", "reasoning"})
_META = "the provider's bookkeeping: ids, names, constants and counts"
# A chunk's fields besides its deltas: what is not listed (an error's message, a field
# nobody models) is inspected whole.
_CHUNK = nontext(
    *(
        NonText(path, _META)
        for path in ("id", "object", "created", "model", "system_fingerprint", "service_tier")
    ),
    NonText("choices", "each choice is read below"),
    NonText("obfuscation", "random padding the provider adds against length side channels"),
    NonText("usage", "token counts"),
    NonText("error.type", _META),
    NonText("error.code", _META),
)
_CHOICE = nontext(
    NonText("index", _META),
    NonText("finish_reason", _META),
    NonText("delta", "read channel by channel"),
    NonText("logprobs", "restates the text: removed (it cannot be held back with the text)"),
)
_CALL = nontext(
    NonText("index", _META),
    NonText("id", "an id the provider issued"),
    NonText("type", _META),
    NonText("function.arguments", "a channel of its own"),
)


async def rewrite_stream(channels: Channels, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    template: dict[str, Any] = {}
    async for event in events:
        if clean_event(event) is None:  # comments, ids, retry hints: not relayed
            continue
        _, data = text_event(event)
        assert data is not None
        if data.strip() == "[DONE]":
            for index in channels.pending():  # a stream that never said finish_reason
                yield frame(None, await _flush(channels, index, template, {}))
            yield b"data: [DONE]\n\n"
            continue
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise shape_error("a data line that is not JSON") from None
        if not isinstance(chunk, dict):
            raise shape_error("a chunk that is not an object")
        await inspect_leaves(channels, chunk, _CHUNK)
        if "error" in chunk:
            yield frame(None, chunk)
            continue
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise shape_error("a chunk without choices")
        template = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
        for choice in choices:
            if not isinstance(choice, dict) or not isinstance(choice.get("delta"), dict):
                raise shape_error("a choice without a delta")
            await inspect_leaves(channels, choice, _CHOICE)
            if choice.get("logprobs") is not None:  # would spell held-back or masked text
                choice["logprobs"] = None
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
                        await inspect_leaves(channels, call, _CALL)  # the tool's name
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
