"""OpenAI Responses answers: read once (whole or streamed), and written (the fallback message,
the mock provider) as OpenAI sends them: a ``response`` object, or its event stream."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.normalized import TextSlot, json_leaves
from gateway.surfaces.base import (
    Answer,
    Choice,
    broken_stream,
    event_parts,
    frame,
    json_answer,
    json_event,
    note_usage,
)
from gateway.surfaces.slots import json_string

__all__ = [
    "Reader",
    "answer_body",
    "answer_events",
    "function_item",
    "message_item",
    "read_answer",
    "read_items",
    "response_events",
    "response_object",
]

# Item types whose strings are the provider's ids and states, never text the model wrote.
_PLAIN = frozenset({"id", "type", "status", "call_id", "role"})


def read_answer(raw: bytes, strip_logprobs: bool = False, data: Any = None) -> Answer:
    """A ``response`` object: its usage now, its texts when first asked for."""
    return json_answer(raw, _walk, data)


def read_items(raw: bytes) -> Answer:
    """A list of a kept response's input items (``/input_items``): their texts, as slots."""
    return json_answer(raw, _walk_items)


def _walk_items(answer: Answer) -> None:
    items = answer.data.get("data") if isinstance(answer.data, dict) else None
    if not isinstance(items, list):
        answer.unreadable = "no data"
        return
    for item in items:
        if not isinstance(item, dict):
            answer.unreadable = "an item that is not an object"
            continue
        _item_slots(item, answer.texts, answer.owners, [])


def _walk(answer: Answer) -> None:
    data = answer.data
    output = data.get("output") if isinstance(data, dict) else None
    if not isinstance(output, list):
        answer.unreadable = "no output"
        return
    texts: list[str] = []
    for item in output:
        if not isinstance(item, dict):
            answer.unreadable = "an output item that is not an object"
            continue
        _item_slots(item, answer.texts, answer.owners, texts)
    answer.choices.append(Choice("".join(texts) if texts else None))


def _item_slots(
    item: dict[str, Any], out: list[TextSlot], owners: list[Any], texts: list[str]
) -> None:
    """The texts of one output item (message parts, function arguments, reasoning summaries,
    every other string of an item type not modelled here)."""
    itype = item.get("type")
    if itype == "message":
        for part in item.get("content") or []:
            if isinstance(part, dict):
                for key in ("text", "refusal"):
                    if isinstance(part.get(key), str):
                        out.append(TextSlot("assistant", part, key))
                        if part.get("type") == "output_text":
                            texts.append(part[key])
                if isinstance(part.get("annotations"), list):
                    json_leaves(part["annotations"], "assistant", "content", out)
    elif itype in ("function_call", "custom_tool_call"):
        key = "arguments" if itype == "function_call" else "input"
        json_string(item, key, "assistant", "tool_arguments", out, owners)
    else:
        for key, value in item.items():
            if key in _PLAIN:
                continue
            if isinstance(value, str):
                out.append(TextSlot("assistant", item, key))
            elif isinstance(value, dict | list):
                json_leaves(value, "assistant", "content", out)


class Reader:
    """A Responses event stream read once (see ``StreamReader``): usage from the final
    ``response.completed`` (or ``incomplete``), text from the output text deltas."""

    def __init__(self, texts: bool, strip_logprobs: bool = False) -> None:
        self._texts = texts
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.choices: dict[int, Choice] = {}
        self.done = False
        self.usage_only = False

    def read(self, event: bytes) -> bytes:
        mentions_usage = b'"usage"' in event
        if not self._texts and not mentions_usage:
            return event
        _, payload = event_parts(event)
        if payload is None:
            return event
        if not self._texts:
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return event
            if isinstance(data, dict) and isinstance(data.get("response"), dict):
                note_usage(self, data["response"].get("usage"))
            return event
        data = json_event(payload)
        etype = data.get("type")
        if etype in ("error", "response.failed"):
            raise broken_stream("an error event")
        if etype == "response.output_text.delta" and isinstance(data.get("delta"), str):
            self.choices.setdefault(0, Choice()).parts.append(data["delta"])
        response = data.get("response")
        if isinstance(response, dict):
            note_usage(self, response.get("usage"))
        self.done = etype in ("response.completed", "response.incomplete")
        return event


def _usage(tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "input_tokens": tokens_in,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": tokens_out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": tokens_in + tokens_out,
    }


def message_item(item_id: str, text: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": []}
    return {
        "id": item_id,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }


def function_item(item_id: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def response_object(
    answer_id: str,
    model: str,
    output: list[dict[str, Any]],
    usage: tuple[int, int] | None,
    status: str = "completed",
) -> dict[str, Any]:
    """A ``response`` object with the fields the SDKs read."""
    return {
        "id": answer_id,
        "object": "response",
        "created_at": 0,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _usage(*usage) if usage is not None else None,
        "metadata": {},
    }


def answer_body(answer_id: str, model: str, text: str, tokens_in: int, tokens_out: int) -> bytes:
    """A complete ``response`` carrying ``text``, as OpenAI sends it."""
    item = message_item("msg_" + answer_id.removeprefix("resp_"), text)
    return orjson.dumps(response_object(answer_id, model, [item], (tokens_in, tokens_out)))


def answer_events(
    answer_id: str, model: str, pieces: list[str], tokens_in: int, tokens_out: int
) -> list[bytes]:
    """The events of a streamed ``response`` whose one message is ``pieces``."""
    item = message_item("msg_" + answer_id.removeprefix("resp_"), "".join(pieces))
    return response_events(answer_id, model, [(item, pieces)], tokens_in, tokens_out)


def response_events(
    answer_id: str,
    model: str,
    items: list[tuple[dict[str, Any], list[str]]],
    tokens_in: int,
    tokens_out: int,
) -> list[bytes]:
    """Every event OpenAI sends for ``items`` (message or function call, each with the
    pieces its text is streamed in), in its order, numbered."""
    events: list[dict[str, Any]] = []
    start = response_object(answer_id, model, [], None, "in_progress")
    events += [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
    ]
    for index, (item, pieces) in enumerate(items):
        events += _item_events(index, item, pieces)
    done = response_object(answer_id, model, [i for i, _ in items], (tokens_in, tokens_out))
    events.append({"type": "response.completed", "response": done})
    for n, event in enumerate(events):
        event["sequence_number"] = n
    return [frame(e["type"], e) for e in events]


def _item_events(index: int, item: dict[str, Any], pieces: list[str]) -> list[dict[str, Any]]:
    at = {"item_id": item["id"], "output_index": index}
    if item["type"] == "function_call":
        added = {**item, "arguments": "", "status": "in_progress"}
        return [
            {"type": "response.output_item.added", "output_index": index, "item": added},
            *({"type": "response.function_call_arguments.delta", **at, "delta": p} for p in pieces),
            {
                "type": "response.function_call_arguments.done",
                **at,
                "name": item["name"],
                "arguments": item["arguments"],
            },
            {"type": "response.output_item.done", "output_index": index, "item": item},
        ]
    text = item["content"][0]["text"]
    part = {"type": "output_text", "text": "", "annotations": []}
    at = {**at, "content_index": 0}
    return [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": {**item, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **at, "part": part},
        *({"type": "response.output_text.delta", **at, "delta": p, "logprobs": []} for p in pieces),
        {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **at, "part": {**part, "text": text}},
        {"type": "response.output_item.done", "output_index": index, "item": item},
    ]
