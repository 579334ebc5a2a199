"""Anthropic Messages (``POST /v1/messages``): requests, errors and model lists in
Anthropic's own shapes, answers read once, and the knobs steps turn on the body."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest
from gateway.surfaces.anthropic_messages import request as _request
from gateway.surfaces.anthropic_messages.answer import (
    Reader,
    answer_body,
    answer_events,
    read_answer,
)
from gateway.surfaces.anthropic_messages.request import parse
from gateway.surfaces.anthropic_messages.stream import rewrite_stream
from gateway.surfaces.base import TextSurface

__all__ = ["SURFACE", "answer_body", "answer_events", "error_body", "models_body", "parse"]

# Anthropic's documented error types per status (the SDK picks its exception by status): for
# the gateway's own errors and for an upstream's, translated from the other API.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error")


def _error(err: GatewayError, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type(err.status), "message": err.message, "code": err.reason.code},
        "request_id": request_id,
    }


def error_body(err: GatewayError, request_id: str) -> bytes:
    return orjson.dumps(_error(err, request_id))


def stream_error(err: GatewayError, request_id: str) -> bytes:
    """An in-stream ``error`` event, which the anthropic SDK raises as an APIStatusError."""
    return b"event: error\ndata: " + orjson.dumps(_error(err, request_id)) + b"\n\n"


def models_body(models: list[tuple[str, str]]) -> bytes:
    data = [
        {"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}
        for name, _ in models
    ]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return orjson.dumps({"data": data, "has_more": False, "first_id": first, "last_id": last})


class AnthropicMessages(TextSurface):
    api = _request.API
    endpoint = "messages"
    path = "/messages"
    sdk_header: str | None = "anthropic-version"
    final_event = b"event: message_stop"

    error_body = staticmethod(error_body)
    stream_error = staticmethod(stream_error)
    models_body = staticmethod(models_body)
    error_type = staticmethod(error_type)
    answer_body = staticmethod(answer_body)

    def __init__(self) -> None:
        super().__init__(_request, read_answer, Reader, rewrite_stream, "msg_")

    def upstream_error(self, message: str, status: int) -> bytes:
        error = {"type": error_type(status), "message": message}
        return orjson.dumps({"type": "error", "error": error})

    def answer_events(
        self,
        request: NormalizedRequest,
        answer_id: str,
        model: str,
        pieces: list[str],
        tokens_in: int,
        tokens_out: int,
    ) -> list[bytes]:
        return answer_events(answer_id, model, pieces, tokens_in, tokens_out)


SURFACE = AnthropicMessages()
