"""Token counts as the provider reported them, for the audit record (and later, cost).

Whole answers are parsed once here; in a stream only the events that mention usage are
(OpenAI's last chunk with ``stream_options.include_usage``; Anthropic's ``message_start`` and
``message_delta``), so relaying costs one substring test per event.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.context import RequestContext

__all__ = ["note_answer", "note_event"]


def note_answer(ctx: RequestContext, body: bytes) -> None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if isinstance(data, dict):
        _note(ctx, data.get("usage"))


def note_event(ctx: RequestContext, event: bytes) -> None:
    if b'"usage"' not in event:
        return
    for line in event.split(b"\n"):
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
            try:
                data = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                return
            if isinstance(data, dict):
                message = data.get("message")
                nested = message.get("usage") if isinstance(message, dict) else None
                _note(ctx, data.get("usage") or nested)


def _note(ctx: RequestContext, usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    tokens_in = usage.get("prompt_tokens", usage.get("input_tokens"))
    tokens_out = usage.get("completion_tokens", usage.get("output_tokens"))
    if isinstance(tokens_in, int):
        ctx.tokens_in = tokens_in
    if isinstance(tokens_out, int):
        ctx.tokens_out = tokens_out
