"""Upstream error bodies in the client's API shape, so its SDK raises its own error class.

The HTTP status is kept: both APIs give 400, 401, 403, 404, 413 and 429 the same meaning,
and the gateway answers any 5xx with its own error anyway. The error type comes from the
client surface's one status table, the same that renders the gateway's own errors.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.surfaces import ANTHROPIC, OPENAI, Surface

__all__ = ["anthropic_error", "openai_error", "upstream_error"]


def _message(body: bytes | None, status: int) -> str:
    """The upstream's own message when its body has one; both APIs nest it in ``error``."""
    try:
        data: Any = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else f"The model provider answered HTTP {status}."


def upstream_error(client: Surface, body: bytes | None, status: int) -> bytes:
    """An upstream error body (in the other API) in ``client``'s shape."""
    return client.upstream_error(_message(body, status), status)


def openai_error(body: bytes | None, status: int) -> bytes:
    """An Anthropic error body as OpenAI's ``{"error": {...}}``."""
    return upstream_error(OPENAI, body, status)


def anthropic_error(body: bytes | None, status: int) -> bytes:
    """An OpenAI error body as Anthropic's ``{"type": "error", "error": {...}}``."""
    return upstream_error(ANTHROPIC, body, status)
