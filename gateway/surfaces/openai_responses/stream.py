"""The text of a Responses event stream through the boundary's channels, event by event.

Deltas (output text, refusal, function-call arguments, reasoning summaries) go through the
hold-back windows; the ``.done`` events and the final ``response`` that repeat a text whole are
given the text as it was relayed, so the client never sees a value the deltas withheld. An
event type not known here ends the stream (fail closed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.surfaces.base import Channels, frame, shape_error, text_event

__all__ = ["rewrite_stream"]

Channel = tuple[int, str, int]  # (output index, text kind, content or summary index)

# delta event -> (channel kind, the field its done event and part repeat the text in)
_DELTAS = {
    "response.output_text.delta": "text",
    "response.refusal.delta": "refusal",
    "response.function_call_arguments.delta": "arguments",
    "response.reasoning_summary_text.delta": "summary",
    "response.reasoning_text.delta": "reasoning",
}
_DONE = {
    "response.output_text.done": ("text", "text"),
    "response.refusal.done": ("refusal", "refusal"),
    "response.function_call_arguments.done": ("arguments", "arguments"),
    "response.reasoning_summary_text.done": ("summary", "text"),
    "response.reasoning_text.done": ("reasoning", "text"),
}
_DELTA_OF = {kind: name for name, kind in _DELTAS.items()}
# Events with no text of their own (the item or part they open is empty).
_PLAIN = frozenset(
    {
        "response.created", "response.in_progress", "response.queued",
        "response.output_item.added", "response.content_part.added",
        "response.reasoning_summary_part.added", "response.web_search_call.in_progress",
        "response.web_search_call.searching", "response.web_search_call.completed",
        "response.file_search_call.in_progress", "response.file_search_call.searching",
        "response.file_search_call.completed", "error", "response.failed",
    }
)  # fmt: skip
_FINAL = frozenset({"response.completed", "response.incomplete"})


class _Relayed:
    """What each channel has relayed so far: the whole texts the done events repeat."""

    def __init__(self, channels: Channels) -> None:
        self.channels = channels
        self.text: dict[Channel, str] = {}

    async def feed(self, channel: Channel, piece: str) -> str:
        out = await self.channels.feed(channel, piece)
        self.text[channel] = self.text.get(channel, "") + out
        return out

    async def flush(self, index: int, at: dict[str, Any]) -> list[bytes]:
        """What ``index``'s windows still held, as delta events of their own."""
        events = []
        for channel, rest in await self.channels.finish(index):
            self.text[channel] = self.text.get(channel, "") + rest
            name = _DELTA_OF[channel[1]]
            event = {"type": name, **at, "output_index": index, "delta": rest}
            if channel[1] == "summary":
                event["summary_index"] = channel[2]
            elif channel[1] != "arguments":
                event["content_index"] = channel[2]
            events.append(frame(name, event))
        return events

    def whole(self, channel: Channel, value: Any) -> str:
        """The text a done event or an item repeats, as relayed; a non-empty text that never
        came through the deltas cannot be vouched for."""
        if channel in self.text:
            return self.text[channel]
        if value:
            raise shape_error("a text that was not streamed")
        return "" if value is None else str(value)

    def fix_item(self, index: int, item: Any) -> None:
        if not isinstance(item, dict):
            raise shape_error("an output item that is not an object")
        itype = item.get("type")
        if itype == "message":
            for j, part in enumerate(item.get("content") or []):
                if isinstance(part, dict):
                    for key in ("text", "refusal"):
                        if key in part:
                            part[key] = self.whole((index, key, j), part[key])
        elif itype == "function_call":
            item["arguments"] = self.whole((index, "arguments", 0), item.get("arguments"))
        elif itype == "reasoning":
            for j, part in enumerate(item.get("summary") or []):
                if isinstance(part, dict) and "text" in part:
                    part["text"] = self.whole((index, "summary", j), part["text"])


def _index(event: dict[str, Any]) -> int:
    index = event.get("output_index", 0)
    if not isinstance(index, int):
        raise shape_error("an output index that is not a number")
    return index


def _sub(event: dict[str, Any], kind: str) -> int:
    key = "summary_index" if kind == "summary" else "content_index"
    value = event.get(key, 0)
    return value if isinstance(value, int) else 0


async def rewrite_stream(channels: Channels, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    relayed = _Relayed(channels)
    async for raw in events:
        name, data = text_event(raw)
        if data is None:
            yield raw
            continue
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise shape_error("a data line that is not JSON") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise shape_error("an event without a type")
        etype = event["type"]
        if etype in _PLAIN:
            yield raw
            continue
        at = {"item_id": event["item_id"]} if "item_id" in event else {}
        if etype in _DELTAS:
            kind = _DELTAS[etype]
            if not isinstance(event.get("delta"), str):
                raise shape_error(f"{etype} without a string delta")
            channel = (_index(event), kind, 0 if kind == "arguments" else _sub(event, kind))
            event["delta"] = await relayed.feed(channel, event["delta"])
            event.pop("logprobs", None)  # token by token, they would spell what was masked
        elif etype in _DONE:
            kind, key = _DONE[etype]
            index = _index(event)
            for flushed in await relayed.flush(index, at):
                yield flushed
            channel = (index, kind, 0 if kind == "arguments" else _sub(event, kind))
            event[key] = relayed.whole(channel, event.get(key))
            event.pop("logprobs", None)
        elif etype in ("response.content_part.done", "response.reasoning_summary_part.done"):
            index, part = _index(event), event.get("part")
            summary = "summary" in etype
            if isinstance(part, dict):
                for key in ("text", "refusal"):
                    if key in part:
                        kind = "summary" if summary else key
                        part[key] = relayed.whole((index, kind, _sub(event, kind)), part[key])
        elif etype == "response.output_item.done":
            index = _index(event)
            for flushed in await relayed.flush(index, at):
                yield flushed
            relayed.fix_item(index, event.get("item"))
        elif etype in _FINAL:
            for index in channels.pending():
                for flushed in await relayed.flush(index, {}):
                    yield flushed
            response = event.get("response")
            output = response.get("output") if isinstance(response, dict) else None
            for index, item in enumerate(output if isinstance(output, list) else []):
                relayed.fix_item(index, item)
        else:
            raise shape_error(f"event {etype[:48]}")
        yield frame(name, event)
