"""Anthropic token counting (``POST /v1/messages/count_tokens``): the body is the messages
request it counts, and its text leaves the gateway, so it is parsed, inspected, masked or
refused exactly as that request would be. The answer is a count: no text, no stream."""

from __future__ import annotations

from typing import Any

import orjson

from gateway import errors
from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest
from gateway.surfaces import anthropic_messages
from gateway.surfaces.anthropic_messages import request as messages
from gateway.surfaces.base import Answer, ErrorsOf, NoTextAnswers, StreamReader, json_answer
from gateway.surfaces.fields import parse_object

__all__ = ["API", "SURFACE", "count_body"]

API = "anthropic_count_tokens"
_MESSAGES = anthropic_messages.SURFACE


def parse(raw: bytes) -> NormalizedRequest:
    """The messages request's own parsing (it requires ``max_tokens``, which a count has
    none of: one is lent for the parse and taken back)."""
    body = parse_object(raw)
    lent = "max_tokens" not in body
    if lent:
        try:
            raw = orjson.dumps({**body, "max_tokens": 1})
        except orjson.JSONEncodeError as exc:  # nested deeper than the encoder writes
            raise GatewayError(errors.REQUEST_TOO_DEEP) from exc
    request = messages.parse(raw)
    if lent:
        del request.body["max_tokens"]
    request.api, request.stream, request.max_tokens = API, False, None
    request.body.pop("stream", None)
    return request


def read_answer(raw: bytes, strip_logprobs: bool = False, data: Any = None) -> Answer:
    """``{"input_tokens": n}``: nothing to inspect, nothing billed."""
    return json_answer(raw, None, data)


def count_body(tokens: int) -> bytes:
    return orjson.dumps({"input_tokens": tokens})


class AnthropicCountTokens(NoTextAnswers, ErrorsOf):
    """Anthropic's error shapes and model lists (the messages surface's)."""

    _kind = "a token count"
    api = API
    endpoint = "count_tokens"
    path = "/messages/count_tokens"
    sdk_header: str | None = "anthropic-version"
    final_event = b"event: message_stop"  # never streamed

    parse = staticmethod(parse)
    read_answer = staticmethod(read_answer)

    def __init__(self) -> None:
        super().__init__(_MESSAGES)

    def stream_reader(self, texts: bool, strip_logprobs: bool = False) -> StreamReader:
        return _MESSAGES.stream_reader(texts, strip_logprobs)

    def answer_id(self, suffix: str) -> str:
        return "count_" + suffix


SURFACE = AnthropicCountTokens()
