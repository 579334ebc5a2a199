"""OpenAI Responses (``POST /v1/responses``): requests, errors and model lists in OpenAI's own
shapes (the chat surface's error table), answers read once, and the knobs steps turn."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest
from gateway.surfaces import openai_chat
from gateway.surfaces.base import Answer, Channels, frame
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


class OpenAIResponses:
    api = _request.API
    endpoint = "responses"
    path = "/responses"
    sdk_header: str | None = None
    final_event = b"event: response.completed"
    answers_text = True

    parse = staticmethod(_request.parse)
    error_body = staticmethod(openai_chat.error_body)
    stream_error = staticmethod(stream_error)
    models_body = staticmethod(openai_chat.models_body)
    error_type = staticmethod(openai_chat.error_type)
    answer_body = staticmethod(answer_body)
    output_ceilings = staticmethod(_request.output_ceilings)
    set_output_ceiling = staticmethod(_request.set_output_ceiling)
    ask_usage_in_stream = staticmethod(_request.ask_usage_in_stream)
    ask_logprobs = staticmethod(_request.ask_logprobs)
    ask_no_store = staticmethod(_request.ask_no_store)

    def upstream_error(self, message: str, status: int) -> bytes:
        return openai_chat.SURFACE.upstream_error(message, status)

    def read_answer(self, body: bytes, strip_logprobs: bool = False) -> Answer:
        return read_answer(body, strip_logprobs)

    def stream_reader(self, texts: bool, strip_logprobs: bool = False) -> Reader:
        return Reader(texts, strip_logprobs)

    def rewrite_stream(
        self, channels: Channels, events: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        return rewrite_stream(channels, events)

    def answer_id(self, suffix: str) -> str:
        return "resp_" + suffix

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
