"""The wire APIs clients speak. Each module parses its format into a NormalizedRequest and
renders errors and model lists in that API's own shapes, so the official SDKs raise their own
error classes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import GatewayError
from gateway.normalized import Api, NormalizedRequest
from gateway.surfaces import anthropic_messages, openai_chat

__all__ = ["ANTHROPIC", "OPENAI", "Surface"]


@dataclass(frozen=True, slots=True)
class Surface:
    api: Api
    endpoint: str
    parse: Callable[[bytes], NormalizedRequest]
    error_body: Callable[[GatewayError, str], bytes]
    stream_error: Callable[[GatewayError, str], bytes]
    models_body: Callable[[list[tuple[str, str]]], bytes]
    # How the last event of a complete answer stream starts (held until audited).
    final_event: bytes


OPENAI = Surface(
    "openai_chat",
    "chat",
    openai_chat.parse,
    openai_chat.error_body,
    openai_chat.stream_error,
    openai_chat.models_body,
    b"data: [DONE]",
)
ANTHROPIC = Surface(
    "anthropic_messages",
    "messages",
    anthropic_messages.parse,
    anthropic_messages.error_body,
    anthropic_messages.stream_error,
    anthropic_messages.models_body,
    b"event: message_stop",
)
