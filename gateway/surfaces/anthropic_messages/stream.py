"""The text of a message event stream through the boundary's channels, event by event; an
event of a shape not known here ends the stream (fail closed).

Every text is inspected: block deltas through their channels, the other strings of an event
(``message_start``'s message, an error's message, a tool's name, citations, fields nobody
models) whole. A thinking block is signed by the provider and cannot be changed: its events
are held until the block ends and released only if nothing in it would be changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.surfaces.base import Channels, clean_event, frame, shape_error, text_event
from gateway.surfaces.total import NonText, NonTextPaths, inspect_leaves, nontext

__all__ = ["rewrite_stream"]

_META = "the provider's bookkeeping: ids, names, constants and counts"
# Blocks that start empty and fill through deltas; any other start carries content unread.
_EMPTY_STARTS = {"text": ("text", ""), "tool_use": ("input", {}), "thinking": ("thinking", "")}
_DELTAS = {"text_delta": "text", "input_json_delta": "partial_json"}
# What each event carries that is not text; all else is inspected whole.
_EVENTS: dict[str, NonTextPaths] = {
    "message_start": nontext(
        NonText("type", _META),
        *(
            NonText(f"message.{key}", _META)
            for key in ("id", "type", "role", "model", "stop_reason", "usage")
        ),
    ),
    "message_delta": nontext(
        NonText("type", _META), NonText("delta.stop_reason", _META), NonText("usage", _META)
    ),
    "message_stop": nontext(NonText("type", _META)),
    "ping": nontext(NonText("type", _META)),
    "error": nontext(NonText("type", _META), NonText("error.type", _META)),
    "content_block_start": nontext(
        NonText("type", _META),
        NonText("index", _META),
        NonText("content_block.type", _META),
        NonText("content_block.id", "an id the provider issued"),
        NonText("content_block.text", "a channel of its own (starts empty)"),
        NonText("content_block.input", "a channel of its own (starts empty)"),
        NonText("content_block.thinking", "held and inspected with the block"),
        NonText("content_block.signature", "the provider's signature"),
        NonText("content_block.data", "redacted thinking: encrypted by the provider"),
    ),
    "citations_delta": nontext(
        NonText("type", _META), NonText("index", _META), NonText("delta.type", _META)
    ),
}


class _Thinking:
    """The events of one thinking block, held until it ends."""

    def __init__(self, index: int, start: bytes) -> None:
        self.index = index
        self.events = [start]
        self.text: list[str] = []


async def rewrite_stream(channels: Channels, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    thinking: _Thinking | None = None
    async for event in events:
        cleaned = clean_event(event)
        if cleaned is None:  # comments, ids, retry hints: not relayed
            continue
        name, data = text_event(cleaned)
        try:
            obj = orjson.loads(data or "")
        except orjson.JSONDecodeError:
            raise shape_error("a data line that is not JSON") from None
        kind = obj.get("type") if isinstance(obj, dict) else None
        if thinking is not None and isinstance(obj, dict) and obj.get("index") == thinking.index:
            if kind == "content_block_delta":
                delta = obj.get("delta")
                dtype = delta.get("type") if isinstance(delta, dict) else None
                if dtype == "thinking_delta" and isinstance(delta, dict):
                    thinking.text.append(str(delta.get("thinking", "")))
                elif dtype != "signature_delta":
                    raise shape_error(f"delta {str(dtype)[:32]} in a thinking block")
                thinking.events.append(cleaned)
                continue
            if kind == "content_block_stop":
                await channels.signed("".join(thinking.text))
                for held in thinking.events:
                    yield held
                thinking = None
                yield cleaned
                continue
        if kind in ("message_start", "message_delta", "message_stop", "ping", "error"):
            yield await _inspected(channels, name, obj, _EVENTS[str(kind)], cleaned)
        elif kind == "content_block_start":
            block = obj.get("content_block")
            btype = block.get("type") if isinstance(block, dict) else None
            empty = _EMPTY_STARTS.get(str(btype))
            if btype != "redacted_thinking" and (empty is None or block.get(empty[0]) != empty[1]):
                raise shape_error(f"a {str(btype)[:32]} block that starts with content")
            out = await _inspected(channels, name, obj, _EVENTS[kind], cleaned)
            if btype == "thinking":
                await channels.signed(None)
                thinking = _Thinking(obj.get("index", 0), out)
            else:
                yield out
        elif kind == "content_block_delta":
            delta = obj.get("delta")
            dtype = delta.get("type") if isinstance(delta, dict) else None
            key = _DELTAS.get(str(dtype))
            if key is not None and isinstance(delta, dict) and isinstance(delta.get(key), str):
                delta[key] = await channels.feed((obj.get("index", 0), key, 0), delta[key])
                yield frame(name, obj)
            elif dtype == "citations_delta":
                yield await _inspected(channels, name, obj, _EVENTS[dtype], cleaned)
            else:  # thinking outside a held block, or a delta type not known here
                raise shape_error(f"delta {str(dtype)[:32]}")
        elif kind == "content_block_stop":
            index = obj.get("index", 0)
            for (_, key, _), rest in await channels.finish(index):
                dtype = "text_delta" if key == "text" else "input_json_delta"
                tail = {"type": "content_block_delta", "index": index,
                        "delta": {"type": dtype, key: rest}}  # fmt: skip
                yield frame("content_block_delta", tail)
            yield cleaned
        else:
            raise shape_error(f"event {str(kind)[:32]}")


async def _inspected(
    channels: Channels, name: str | None, obj: Any, paths: NonTextPaths, cleaned: bytes
) -> bytes:
    """The event with every string ``paths`` does not list inspected; as it came if none
    changed (no serialization for the common event)."""
    return frame(name, obj) if await inspect_leaves(channels, obj, paths) else cleaned
