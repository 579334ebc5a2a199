"""The static fallback answer, as a valid success in the client's own API shape: a whole
body, or a complete SSE stream when the client asked for one, so both SDKs parse it."""

from __future__ import annotations

import random

from gateway.normalized import NormalizedRequest
from gateway.surfaces import surface_of

__all__ = ["message_body", "message_events"]


def _suffix() -> str:
    return f"fallback-{random.getrandbits(64):016x}"


def message_body(request: NormalizedRequest, text: str) -> bytes:
    """No model was called, so usage is zero."""
    surface = surface_of(request)
    return surface.answer_body(surface.answer_id(_suffix()), request.model, text, 0, 0)


def message_events(request: NormalizedRequest, text: str) -> list[bytes]:
    surface = surface_of(request)
    return surface.answer_events(request, surface.answer_id(_suffix()), request.model, [text], 0, 0)
