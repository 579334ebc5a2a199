"""OpenAI Chat Completions answers: read once (whole or streamed), and written (the fallback
message, the mock provider) as OpenAI sends them."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.normalized import TextSlot
from gateway.surfaces.base import (
    Answer,
    Choice,
    broken_stream,
    event_parts,
    json_answer,
    json_event,
    note_usage,
)
from gateway.surfaces.slots import json_string
from gateway.surfaces.total import NonText, answer_leaves, nontext

__all__ = ["Reader", "answer_body", "answer_events", "read_answer"]

# Message fields that carry text (some compatible servers send their reasoning).
_TEXTS = ("content", "refusal", "reasoning_content", "reasoning")
_META = "the provider's bookkeeping: ids, names, constants and counts"
# What an answer carries that is not text the model wrote; everything else (annotations,
# tool names, fields nobody models) is inspected. Logprobs restate the content token by
# token: they go when the boundary changed the text (``Answer.restated``).
ANSWER_NONTEXT = nontext(
    *(
        NonText(path, _META)
        for path in (
            "id",
            "object",
            "created",
            "model",
            "system_fingerprint",
            "service_tier",
            "usage",
            "choices.*.index",
            "choices.*.finish_reason",
            "choices.*.message.role",
            "choices.*.message.tool_calls.*.id",
            "choices.*.message.tool_calls.*.type",
        )
    ),
    NonText("choices.*.logprobs", "restates the content; dropped when the content changed"),
)


def _logprobs(choice: dict[str, Any]) -> list[float]:
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return []
    return [t["logprob"] for t in content if isinstance(t, dict) and "logprob" in t]


def read_answer(raw: bytes, strip_logprobs: bool = False, data: Any = None) -> Answer:
    """A chat.completion: its usage now, its choices and text slots when first asked for
    (at once when stripping logprobs, so the body never goes on with them)."""
    answer = json_answer(raw, _stripping if strip_logprobs else _walk, data)
    if strip_logprobs:
        answer.choices  # noqa: B018 - walked now: stripping changes the body
    return answer


def _stripping(answer: Answer) -> None:
    _walk(answer, strip=True)


def _walk(answer: Answer, strip: bool = False) -> None:
    data = answer.data
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list):
        answer.unreadable = "no choices"
        return
    for choice in choices:
        if not isinstance(choice, dict):
            answer.unreadable = "a choice without a message"
            continue
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        text = content if isinstance(content, str) else None
        answer.choices.append(Choice(text, _logprobs(choice)))
        if strip and choice.get("logprobs") is not None:
            choice["logprobs"] = None
            answer.changed = True
        elif choice.get("logprobs") is not None:
            answer.restated.append((choice, "logprobs"))
        if not isinstance(message, dict):
            answer.unreadable = "a choice without a message"
        elif message.get("audio") is not None:  # a transcript cannot be changed with its audio
            answer.unreadable = "an audio answer"
        elif answer.unreadable is None:
            _slots(message, answer)
    if answer.unreadable is None:
        answer_leaves(answer, ANSWER_NONTEXT)


def _slots(message: dict[str, Any], answer: Answer) -> None:
    for key in _TEXTS:
        if isinstance(message.get(key), str):
            answer.texts.append(TextSlot("assistant", message, key))
    calls = message.get("tool_calls")
    functions = [c.get("function") for c in calls if isinstance(c, dict)] if calls else []
    functions.append(message.get("function_call"))  # the deprecated single-call form
    for function in functions:
        if isinstance(function, dict):
            json_string(
                function,
                "arguments",
                "assistant",
                "tool_arguments",
                answer.texts,
                answer.owners,
                duplicates="normalize",
            )


class Reader:
    """A chat.completion.chunk stream read once (see ``StreamReader``)."""

    def __init__(self, texts: bool, strip_logprobs: bool = False) -> None:
        self._texts = texts
        self._strip = strip_logprobs
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.choices: dict[int, Choice] = {}
        self.done = False
        self.usage_only = False

    def read(self, event: bytes) -> bytes:
        self.usage_only = False
        mentions_usage = b'"usage"' in event
        if not self._texts and not mentions_usage:
            return event
        self.done = False  # read with ``texts``: whether this event is the final one
        _, payload = event_parts(event)
        if payload is None:
            return event
        if payload.strip() == b"[DONE]":
            self.done = True
            return event
        if not self._texts:
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return event
            if isinstance(chunk, dict):
                note_usage(self, chunk.get("usage"))
                self.usage_only = chunk.get("choices") == []
            return event
        chunk = json_event(payload)
        if "error" in chunk:
            raise broken_stream("an error event")
        if mentions_usage:
            note_usage(self, chunk.get("usage"))
            self.usage_only = chunk.get("choices") == []
        return b"data: " + orjson.dumps(chunk) + b"\n\n" if self._choices(chunk) else event

    def _choices(self, chunk: dict[str, Any]) -> bool:
        changed = False
        for raw in chunk.get("choices") or []:
            if not isinstance(raw, dict):
                continue
            choice = self.choices.setdefault(raw.get("index", 0), Choice())
            delta = raw.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                choice.parts.append(content)
            if raw.get("logprobs") is not None:
                choice.logprobs = (choice.logprobs or []) + _logprobs(raw)
                if self._strip:
                    raw["logprobs"] = None
                    changed = True
        return changed


def _usage(tokens_in: int, tokens_out: int) -> dict[str, int]:
    return {
        "prompt_tokens": tokens_in,
        "completion_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
    }


def answer_body(answer_id: str, model: str, text: str, tokens_in: int, tokens_out: int) -> bytes:
    """A complete chat completion carrying ``text``, as OpenAI sends it."""
    return orjson.dumps(
        {
            "id": answer_id,
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(tokens_in, tokens_out),
        }
    )


def answer_events(
    answer_id: str,
    model: str,
    pieces: list[str],
    tokens_in: int,
    tokens_out: int,
    include_usage: bool,
) -> list[bytes]:
    """The SSE events of a streamed completion of ``pieces``, ending with ``[DONE]``."""

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": answer_id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": ""}, None)]
    chunks += [chunk({"content": piece}, None) for piece in pieces]
    chunks.append(chunk({}, "stop"))
    if include_usage:
        chunks.append(
            {
                "id": answer_id,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [],
                "usage": _usage(tokens_in, tokens_out),
            }
        )
    return [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
