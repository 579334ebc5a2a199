"""OpenAI Chat Completions (``POST /v1/chat/completions``): requests, errors and model lists
in OpenAI's own shapes, answers read once, and the knobs steps turn on the body."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest
from gateway.surfaces.base import TextSurface
from gateway.surfaces.openai_chat import request as _request
from gateway.surfaces.openai_chat.answer import Reader, answer_body, answer_events, read_answer
from gateway.surfaces.openai_chat.request import include_usage, parse
from gateway.surfaces.openai_chat.stream import rewrite_stream

__all__ = [
    "SURFACE",
    "answer_body",
    "answer_events",
    "error_body",
    "include_usage",
    "models_body",
    "parse",
    "stream_error",
]

# The error "type" OpenAI uses for each status, so SDK users see familiar values: for the
# gateway's own errors and for an upstream's, translated from the other API.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error")


def _error(err: GatewayError, request_id: str) -> dict[str, Any]:
    return {
        "error": {
            "message": err.message,
            "type": error_type(err.status),
            "param": None,
            "code": err.reason.code,
            "request_id": request_id,
        }
    }


def error_body(err: GatewayError, request_id: str) -> bytes:
    return orjson.dumps(_error(err, request_id))


def stream_error(err: GatewayError, request_id: str) -> bytes:
    """An in-stream error: the openai SDK raises APIError on a chunk carrying ``error``."""
    return b"data: " + orjson.dumps(_error(err, request_id)) + b"\n\n"


def models_body(models: list[tuple[str, str]]) -> bytes:
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": owner} for name, owner in models
    ]
    return orjson.dumps({"object": "list", "data": data})


class OpenAIChat(TextSurface):
    api = _request.API
    endpoint = "chat"
    path = "/chat/completions"
    sdk_header: str | None = None
    final_event = b"data: [DONE]"

    error_body = staticmethod(error_body)
    stream_error = staticmethod(stream_error)
    models_body = staticmethod(models_body)
    error_type = staticmethod(error_type)
    answer_body = staticmethod(answer_body)

    def __init__(self) -> None:
        super().__init__(_request, read_answer, Reader, rewrite_stream, "chatcmpl-")

    def upstream_error(self, message: str, status: int) -> bytes:
        error = {"message": message, "type": error_type(status), "param": None, "code": None}
        return orjson.dumps({"error": error})

    def answer_events(
        self,
        request: NormalizedRequest,
        answer_id: str,
        model: str,
        pieces: list[str],
        tokens_in: int,
        tokens_out: int,
    ) -> list[bytes]:
        usage = include_usage(request.body)
        return answer_events(answer_id, model, pieces, tokens_in, tokens_out, usage)


SURFACE = OpenAIChat()
