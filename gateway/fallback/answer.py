"""The static fallback answer, as a valid success in the client's own API shape: a whole
body, or a complete SSE stream when the client asked for one, so both SDKs parse it."""

from __future__ import annotations

import random

from gateway.normalized import NormalizedRequest
from gateway.surfaces import anthropic_messages, openai_chat

__all__ = ["message_body", "message_events"]


def _id(prefix: str) -> str:
    return f"{prefix}fallback-{random.getrandbits(64):016x}"


def message_body(request: NormalizedRequest, text: str) -> bytes:
    """No model was called, so usage is zero."""
    if request.api == "anthropic_messages":
        return anthropic_messages.answer_body(_id("msg_"), request.model, text, 0, 0)
    return openai_chat.answer_body(_id("chatcmpl-"), request.model, text, 0, 0)


def message_events(request: NormalizedRequest, text: str) -> list[bytes]:
    if request.api == "anthropic_messages":
        return anthropic_messages.answer_events(_id("msg_"), request.model, [text], 0, 0)
    options = request.body.get("stream_options")
    usage = isinstance(options, dict) and options.get("include_usage") is True
    return openai_chat.answer_events(_id("chatcmpl-"), request.model, [text], 0, 0, usage)
