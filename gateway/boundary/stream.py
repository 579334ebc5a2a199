"""A streamed answer inspected event by event: each text channel goes through a hold-back
window, tokens are restored, and a blocked entity ends the stream with an error event.

Only event shapes known here are relayed: anything else ends the stream (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway import errors
from gateway.boundary.findings import Finding
from gateway.boundary.holdback import HoldBack
from gateway.boundary.step import Inspection, detection_failed
from gateway.errors import GatewayError
from gateway.normalized import Api
from gateway.steps import Step

__all__ = ["inspect_stream"]

log = logging.getLogger("gateway.boundary")

Channel = tuple[int, str, int]  # (choice or block index, field, tool call index)

# OpenAI delta fields that carry text (some compatible servers stream their reasoning).
_OPENAI_TEXT = frozenset({"content", "refusal", "reasoning_content", "reasoning"})
# Anthropic events relayed as they are, and deltas whose text a signature protects.
_PASS_EVENTS = frozenset({"message_start", "message_delta", "message_stop", "ping", "error"})
# Blocks that start empty and fill through deltas; any other start carries content unread.
_EMPTY_STARTS = {"text": ("text", ""), "tool_use": ("input", {}), "thinking": ("thinking", "")}
_PASS_DELTAS = frozenset({"thinking_delta", "signature_delta", "citations_delta"})
_ANTHROPIC_DELTAS = {"text_delta": "text", "input_json_delta": "partial_json"}


def _shape_error(what: str) -> GatewayError:
    return GatewayError(errors.BOUNDARY_ANSWER_SHAPE, detail=what)


class _Guarded:
    """The policy's detector; a failure refuses, or with ``on_detector_error: allow`` turns
    detection off for the rest of the stream (tokens are still restored)."""

    def __init__(self, inspection: Inspection) -> None:
        self._inspection = inspection
        self._on = inspection.rules.source.scan_output

    @property
    def entities(self) -> frozenset[str]:
        return self._inspection.rules.detector.entities

    def find(self, text: str) -> list[Finding]:
        if not self._on:
            return []
        try:
            return self._inspection.rules.detector.find(text)
        # Third-party matching code: whatever fails, the answer must not pass uninspected
        # unless the policy says so.
        except Exception as exc:  # noqa: BLE001 - fail closed on any detector failure
            inspection = self._inspection
            detection_failed(
                inspection.ctx, inspection.rules, inspection.record, Step.INSPECT_ANSWER, exc
            )
            self._on = False
            return []


class _Channels:
    def __init__(self, inspection: Inspection) -> None:
        self._inspection = inspection
        self._guarded = _Guarded(inspection)
        self._window = inspection.rules.source.stream_window_chars
        self._open: dict[Channel, HoldBack] = {}

    def _get(self, channel: Channel) -> HoldBack:
        hold = self._open.get(channel)
        if hold is None:
            hold = self._open[channel] = HoldBack(
                self._guarded, self._inspection.answer_text, self._window
            )
        return hold

    async def feed(self, channel: Channel, piece: str) -> str:
        out = self._get(channel).feed(piece)
        self._inspection.check_answer()
        return await self._inspection.restore(out)

    async def finish(self, index: int) -> list[tuple[Channel, str]]:
        """What each channel of ``index`` still held, in channel order."""
        done = sorted(c for c in self._open if c[0] == index)
        out = []
        for channel in done:
            rest = self._open.pop(channel).finish()
            self._inspection.check_answer()
            if rest:
                out.append((channel, await self._inspection.restore(rest)))
        return out

    def pending(self) -> list[int]:
        return sorted({c[0] for c in self._open})


def _parse(event: bytes) -> tuple[str | None, str | None]:
    try:
        lines = event.decode().split("\n")
    except UnicodeDecodeError:
        raise _shape_error("an event that is not UTF-8") from None
    name, data = None, []
    for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return name, "\n".join(data) if data else None


def _frame(name: str | None, obj: Any) -> bytes:
    head = b"event: " + name.encode() + b"\n" if name else b""
    return head + b"data: " + orjson.dumps(obj) + b"\n\n"


async def _openai(channels: _Channels, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    template: dict[str, Any] = {}
    async for event in events:
        _, data = _parse(event)
        if data is None:
            yield event
            continue
        if data.strip() == "[DONE]":
            for index in channels.pending():  # a stream that never said finish_reason
                yield _frame(None, await _openai_flush(channels, index, template, {}))
            yield event
            continue
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise _shape_error("a data line that is not JSON") from None
        if not isinstance(chunk, dict) or "error" in chunk:
            if isinstance(chunk, dict):
                yield event
                continue
            raise _shape_error("a chunk that is not an object")
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise _shape_error("a chunk without choices")
        template = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
        for choice in choices:
            if not isinstance(choice, dict) or not isinstance(choice.get("delta"), dict):
                raise _shape_error("a choice without a delta")
            index = choice.get("index", 0)
            delta = choice["delta"]
            for key, value in list(delta.items()):
                if value is None or key == "role":
                    continue
                if key in _OPENAI_TEXT and isinstance(value, str):
                    delta[key] = await channels.feed((index, key, 0), value)
                elif key == "tool_calls" and isinstance(value, list):
                    for call in value:
                        if not isinstance(call, dict):
                            raise _shape_error("a tool call that is not an object")
                        await _feed_function(channels, (index, "tool", call.get("index", 0)), call)
                elif key == "function_call":  # the deprecated single-call form
                    await _feed_function(channels, (index, "function", 0), delta)
                else:
                    raise _shape_error(f"delta field {key[:32]}")
            if choice.get("finish_reason") is not None:
                for (_, key, call_index), rest in await channels.finish(index):
                    _put_openai(delta, key, call_index, rest)
        yield _frame(None, chunk)


async def _feed_function(channels: _Channels, channel: Channel, holder: Any) -> None:
    key = "function" if channel[1] == "tool" else "function_call"
    function = holder.get(key) if isinstance(holder, dict) else None
    if not isinstance(function, dict):
        raise _shape_error(f"a {key} that is not an object")
    if isinstance(function.get("arguments"), str):
        function["arguments"] = await channels.feed(channel, function["arguments"])


def _put_openai(delta: dict[str, Any], key: str, call_index: int, text: str) -> None:
    if key == "tool":
        calls = delta.setdefault("tool_calls", [])
        calls.append({"index": call_index, "function": {"arguments": text}})
    elif key == "function":
        delta["function_call"] = {"arguments": text}
    else:
        delta[key] = (delta.get(key) or "") + text


async def _openai_flush(
    channels: _Channels, index: int, template: dict[str, Any], delta: dict[str, Any]
) -> dict[str, Any]:
    for (_, key, call_index), rest in await channels.finish(index):
        _put_openai(delta, key, call_index, rest)
    return {**template, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}


async def _anthropic(channels: _Channels, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for event in events:
        name, data = _parse(event)
        if data is None:
            yield event
            continue
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise _shape_error("a data line that is not JSON") from None
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind in _PASS_EVENTS:
            yield event
        elif kind == "content_block_start":
            block = obj.get("content_block")
            btype = block.get("type") if isinstance(block, dict) else None
            empty = _EMPTY_STARTS.get(str(btype))
            if btype != "redacted_thinking" and (empty is None or block.get(empty[0]) != empty[1]):
                raise _shape_error(f"a {str(btype)[:32]} block that starts with content")
            yield event
        elif kind == "content_block_delta":
            delta = obj.get("delta")
            dtype = delta.get("type") if isinstance(delta, dict) else None
            key = _ANTHROPIC_DELTAS.get(str(dtype))
            if key is not None and isinstance(delta, dict) and isinstance(delta.get(key), str):
                delta[key] = await channels.feed((obj.get("index", 0), key, 0), delta[key])
                yield _frame(name, obj)
            elif dtype in _PASS_DELTAS:
                yield event
            else:
                raise _shape_error(f"delta {str(dtype)[:32]}")
        elif kind == "content_block_stop":
            index = obj.get("index", 0)
            for (_, key, _), rest in await channels.finish(index):
                dtype = "text_delta" if key == "text" else "input_json_delta"
                tail = {"type": "content_block_delta", "index": index,
                        "delta": {"type": dtype, key: rest}}  # fmt: skip
                yield _frame("content_block_delta", tail)
            yield event
        else:
            raise _shape_error(f"event {str(kind)[:32]}")


async def inspect_stream(
    inspection: Inspection, api: Api, events: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """The events as the caller may see them; raises GatewayError to end the stream."""
    channels = _Channels(inspection)
    relay = _openai if api == "openai_chat" else _anthropic
    async for event in relay(channels, events):
        yield event
    inspection.finish_answer()
