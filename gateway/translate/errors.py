"""Upstream error bodies in the client's API shape, so its SDK raises its own error class.

The HTTP status is kept: both APIs give 400, 401, 403, 404, 413 and 429 the same meaning,
and the gateway answers any 5xx with its own error anyway.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["anthropic_error", "openai_error"]

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


def _message(body: bytes | None, status: int) -> str:
    """The upstream's own message when its body has one; both APIs nest it in ``error``."""
    try:
        data: Any = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else f"The model provider answered HTTP {status}."


def openai_error(body: bytes | None, status: int) -> bytes:
    """An Anthropic error body as OpenAI's ``{"error": {...}}``."""
    error = {
        "message": _message(body, status),
        "type": _OPENAI_TYPES.get(status, "api_error"),
        "param": None,
        "code": None,
    }
    return orjson.dumps({"error": error})


def anthropic_error(body: bytes | None, status: int) -> bytes:
    """An OpenAI error body as Anthropic's ``{"type": "error", "error": {...}}``."""
    error = {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": _message(body, status)}
    return orjson.dumps({"type": "error", "error": error})
