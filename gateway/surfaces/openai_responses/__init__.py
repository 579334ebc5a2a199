"""OpenAI Responses (``POST /v1/responses``): requests, errors and model lists in OpenAI's own
shapes (the chat surface's error table), answers read once, and the knobs steps turn."""

from __future__ import annotations

import orjson

from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest
from gateway.surfaces import openai_chat
from gateway.surfaces.base import ErrorsOf, TextSurface, frame
from gateway.surfaces.openai_responses import request as _request
from gateway.surfaces.openai_responses.answer import (
    Reader,
    answer_body,
    answer_events,
    read_answer,
)
from gateway.surfaces.openai_responses.stream import rewrite_stream

__all__ = ["SURFACE"]


def stream_error(err: GatewayError, request_id: str) -> bytes:
    """An in-stream ``error`` event as the Responses API ends a failed stream, with the
    ``error`` object the openai SDKs raise on."""
    body = orjson.loads(openai_chat.error_body(err, request_id))
    event = {
        "type": "error",
        "code": err.reason.code,
        "message": err.message,
        "param": None,
        "sequence_number": 0,
        **body,
    }
    return frame("error", event)


class OpenAIResponses(TextSurface, ErrorsOf):
    """OpenAI's error shapes and model lists (the chat surface's), its own stream error."""

    api = _request.API
    endpoint = "responses"
    path = "/responses"
    sdk_header: str | None = None
    final_event = b"event: response.completed"

    stream_error = staticmethod(stream_error)
    answer_body = staticmethod(answer_body)

    def __init__(self) -> None:
        TextSurface.__init__(self, _request, read_answer, Reader, rewrite_stream, "resp_")
        ErrorsOf.__init__(self, openai_chat.SURFACE)

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


SURFACE = OpenAIResponses()
