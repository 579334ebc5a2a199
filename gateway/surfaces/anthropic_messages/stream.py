"""The text of a message event stream through the boundary's channels, event by event; an
event of a shape not known here ends the stream (fail closed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from gateway.surfaces.base import Channels, frame, shape_error, text_event

__all__ = ["rewrite_stream"]

# Events relayed as they are.
_PASS_EVENTS = frozenset({"message_start", "message_delta", "message_stop", "ping", "error"})
# Blocks that start empty and fill through deltas; any other start carries content unread.
_EMPTY_STARTS = {"text": ("text", ""), "tool_use": ("input", {}), "thinking": ("thinking", "")}
# Deltas whose text a signature protects (or that carry none).
_PASS_DELTAS = frozenset({"thinking_delta", "signature_delta", "citations_delta"})
_DELTAS = {"text_delta": "text", "input_json_delta": "partial_json"}


async def rewrite_stream(channels: Channels, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for event in events:
        name, data = text_event(event)
        if data is None:
            yield event
            continue
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise shape_error("a data line that is not JSON") from None
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind in _PASS_EVENTS:
            yield event
        elif kind == "content_block_start":
            block = obj.get("content_block")
            btype = block.get("type") if isinstance(block, dict) else None
            empty = _EMPTY_STARTS.get(str(btype))
            if btype != "redacted_thinking" and (empty is None or block.get(empty[0]) != empty[1]):
                raise shape_error(f"a {str(btype)[:32]} block that starts with content")
            yield event
        elif kind == "content_block_delta":
            delta = obj.get("delta")
            dtype = delta.get("type") if isinstance(delta, dict) else None
            key = _DELTAS.get(str(dtype))
            if key is not None and isinstance(delta, dict) and isinstance(delta.get(key), str):
                delta[key] = await channels.feed((obj.get("index", 0), key, 0), delta[key])
                yield frame(name, obj)
            elif dtype in _PASS_DELTAS:
                yield event
            else:
                raise shape_error(f"delta {str(dtype)[:32]}")
        elif kind == "content_block_stop":
            index = obj.get("index", 0)
            for (_, key, _), rest in await channels.finish(index):
                dtype = "text_delta" if key == "text" else "input_json_delta"
                tail = {"type": "content_block_delta", "index": index,
                        "delta": {"type": dtype, key: rest}}  # fmt: skip
                yield frame("content_block_delta", tail)
            yield event
        else:
            raise shape_error(f"event {str(kind)[:32]}")
