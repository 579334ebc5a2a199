"""Anthropic Messages answers: read once (whole or streamed), and written (the fallback
message, the mock provider) as Anthropic sends them."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.normalized import TextSlot, json_leaves
from gateway.surfaces.base import (
    Answer,
    Choice,
    broken_stream,
    event_parts,
    json_answer,
    json_event,
    note_usage,
)
from gateway.surfaces.total import NonText, answer_leaves, nontext

__all__ = ["SIGNED", "Reader", "answer_body", "answer_events", "read_answer"]

# Blocks a signature protects, relayed as the model wrote them.
SIGNED = frozenset({"thinking", "redacted_thinking"})
_META = "the provider's bookkeeping: ids, names, constants and counts"
# What a message carries that is not text the model wrote; everything else (tool names,
# citations, fields nobody models) is inspected. Thinking is inspected, never changed.
ANSWER_NONTEXT = nontext(
    *(
        NonText(path, _META)
        for path in ("id", "type", "role", "model", "stop_reason", "usage", "content.*.type")
    ),
    NonText("content.*[type=tool_use].id", "an id the provider issued"),
    NonText("content.*[type=thinking].signature", "the provider's signature of the block"),
    NonText("content.*[type=redacted_thinking]", "encrypted by the provider, opaque to all"),
)


def read_answer(raw: bytes, strip_logprobs: bool = False, data: Any = None) -> Answer:
    """A message: its usage now, its text (one choice) and text slots when first asked for."""
    return json_answer(raw, _walk, data)


def _walk(answer: Answer) -> None:
    data = answer.data
    if not isinstance(data, dict):
        answer.unreadable = "no content"
        return
    content = data.get("content")
    if not isinstance(content, list):
        answer.unreadable = "no content"
        content = []
    texts = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
            answer.texts.append(TextSlot("assistant", block, "text"))
        elif kind == "tool_use" and isinstance(block.get("input"), dict):
            json_leaves(block["input"], "assistant", "tool_arguments", answer.texts)
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            answer.texts.append(TextSlot("assistant", block, "thinking", signed=True))
        elif kind != "redacted_thinking":
            answer.unreadable = f"content block {str(kind)[:32]}"
    answer.choices.append(Choice("".join(texts) if texts else None))
    if answer.unreadable is None:
        answer_leaves(answer, ANSWER_NONTEXT)


class Reader:
    """A message event stream read once (see ``StreamReader``)."""

    def __init__(self, texts: bool, strip_logprobs: bool = False) -> None:
        self._texts = texts
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.choices: dict[int, Choice] = {}
        self.done = False
        self.usage_only = False  # every usage rides on an event the client needs

    def read(self, event: bytes) -> bytes:
        mentions_usage = b'"usage"' in event
        if not self._texts and not mentions_usage:
            return event
        self.done = False  # read with ``texts``: whether this event is the final one
        name, payload = event_parts(event)
        if payload is None:
            return event
        if not self._texts:
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return event
            if isinstance(data, dict):
                self._note(data)
            return event
        data = json_event(payload)
        kind = data.get("type", name)
        if kind == "error":
            raise broken_stream("an error event")
        if mentions_usage:
            self._note(data)
        if kind == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                self.choices.setdefault(0, Choice()).parts.append(str(delta.get("text", "")))
        self.done = kind == "message_stop"
        return event

    def _note(self, data: dict[str, Any]) -> None:
        message = data.get("message")  # message_start carries it inside the message
        nested = message.get("usage") if isinstance(message, dict) else None
        note_usage(self, data.get("usage") or nested)


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
