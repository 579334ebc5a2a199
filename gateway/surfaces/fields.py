"""Checks on the few client fields the gateway reads, with messages that name the field."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import orjson

from gateway import errors
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.normalized import NormalizedRequest

__all__ = [
    "PARSED",
    "OutputCeiling",
    "invalid",
    "optional_int",
    "parse_object",
    "require_list",
    "require_str",
]

# Called with the body as soon as it is parsed, before a surface builds anything of it:
# surfaces/bounds.py refuses 10,000 messages there, not after their 50,000 slot objects
# (80 ms on the loop, most of it the garbage collections they set off).
PARSED: ContextVar[Callable[[dict[str, Any]], None] | None] = ContextVar("parsed", default=None)


def parse_object(raw: bytes) -> dict[str, Any]:
    """The body as one JSON object. A byte order mark or bytes that are not UTF-8 are
    refused as such (never decoded by guess: another parser could read other text); a key
    named twice keeps its last value, the one inspected and the one forwarded. ``PARSED``'s
    check, if one is set, runs first."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if raw.startswith(b"\xef\xbb\xbf") or not _utf8(raw):
            raise GatewayError(errors.REQUEST_INVALID_ENCODING, detail=str(exc)) from None
        raise GatewayError(errors.REQUEST_INVALID_JSON, detail=str(exc)) from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    check = PARSED.get()
    if check is not None:
        check(body)
    return body


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def invalid(message: str) -> GatewayError:
    return GatewayError(errors.REQUEST_INVALID, f"Invalid request: {message}.")


def require_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise invalid(f"'{key}' must be a non-empty string")
    return value


def require_list(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list) or not value:
        raise invalid(f"'{key}' must be a non-empty array")
    return value


def optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(f"'{key}' must be a positive integer")
    return value


def optional_bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(f"'{key}' must be a boolean")
    return value


class OutputCeiling:
    """The body fields that cap a request's output tokens (``access.max_output_tokens``); the
    first is the one set when the client asked for none."""

    def __init__(self, *fields: str) -> None:
        self._fields = fields

    def asked(self, request: NormalizedRequest) -> list[tuple[str, int]]:
        body = request.body
        return [(f, body[f]) for f in self._fields if body.get(f) is not None]

    def lower(self, request: NormalizedRequest, limit: int) -> bool:
        """Bring every asked ceiling down to ``limit`` (or set one); False: none was above."""
        asked = self.asked(request)
        lowered = [f for f, value in asked if value > limit] if asked else [self._fields[0]]
        for f in lowered:
            request.body[f] = limit
        if lowered:
            request.max_tokens = limit
        return bool(lowered)
