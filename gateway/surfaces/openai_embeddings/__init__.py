"""OpenAI embeddings (``POST /v1/embeddings``): the texts to embed are text slots, so the data
policy changes what is embedded (or refuses); token-id inputs cannot be read and are refused.

The answer is vectors, not text: there is nothing in it to inspect, no stream, and no fallback
message can stand in for it (``answers_text`` is False).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway import errors
from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest, TextSlot, json_leaves
from gateway.surfaces import openai_chat
from gateway.surfaces.base import Answer, ErrorsOf, NoTextAnswers, json_answer
from gateway.surfaces.fields import invalid, parse_object, require_str
from gateway.surfaces.openai_chat.answer import Reader
from gateway.surfaces.total import NonText, every_leaf, nontext

__all__ = ["API", "SURFACE", "embeddings_body"]

API = "openai_embeddings"
UNKNOWN = "unknown"
# Not text sent to a model: the model id and the output knobs.
_NOT_TEXT = frozenset({"model", "encoding_format", "dimensions"})
NONTEXT = nontext(*(NonText(name, "a routing name or a knob") for name in _NOT_TEXT))


def _tokens(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    )


def parse(raw: bytes) -> NormalizedRequest:
    body = parse_object(raw)
    model = require_str(body, "model")
    request = NormalizedRequest(api=API, body=body, model=model, stream=False, max_tokens=None)
    texts = body.get("input")
    if isinstance(texts, str):
        request.texts.append(TextSlot("user", body, "input", "content"))
    elif isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts):
        request.texts += [TextSlot("user", texts, i, "content") for i in range(len(texts))]
    elif isinstance(texts, list) and texts and (_tokens(texts) or all(map(_tokens, texts))):
        # Token ids are text the gateway cannot read without the model's tokenizer.
        raise GatewayError(
            errors.BOUNDARY_UNINSPECTABLE,
            "The request holds token ids, which the gateway cannot inspect: send the text.",
        )
    else:
        raise invalid("'input' must be a string or a non-empty array of strings")
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise invalid("'dimensions' must be a positive integer")
    for key, value in body.items():  # ``user`` and fields the gateway does not model
        if key in _NOT_TEXT or key == "input":
            continue
        if isinstance(value, str):
            request.texts.append(TextSlot(UNKNOWN, body, key, "content"))
        elif isinstance(value, dict | list):
            json_leaves(value, UNKNOWN, "content", request.texts)
    every_leaf(request, NONTEXT)  # keys, numbers and whatever the loop above did not name
    return request


def read_answer(raw: bytes, strip_logprobs: bool = False, data: Any = None) -> Answer:
    """A list of vectors: only its usage is read (there is no text in it)."""
    answer = json_answer(raw, None, data)
    if answer.tokens_in is not None and answer.tokens_out is None:
        answer.tokens_out = 0
    return answer


def embeddings_body(model: str, vectors: list[Any], tokens_in: int) -> bytes:
    """A list of embeddings (floats, or base64 strings), as OpenAI sends it."""
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    usage = {"prompt_tokens": tokens_in, "total_tokens": tokens_in}
    return orjson.dumps({"object": "list", "data": data, "model": model, "usage": usage})


class OpenAIEmbeddings(NoTextAnswers, ErrorsOf):
    """OpenAI's error shapes and model lists (the chat surface's)."""

    _kind = "embeddings"
    api = API
    endpoint = "embeddings"
    path = "/embeddings"
    sdk_header: str | None = None
    final_event = b"data: [DONE]"  # never streamed

    parse = staticmethod(parse)

    def __init__(self) -> None:
        super().__init__(openai_chat.SURFACE)

    def read_answer(self, body: bytes, strip_logprobs: bool = False, data: Any = None) -> Answer:
        return read_answer(body, strip_logprobs, data)

    def stream_reader(self, texts: bool, strip_logprobs: bool = False) -> Reader:
        return Reader(texts, strip_logprobs)

    def answer_id(self, suffix: str) -> str:
        return "emb-" + suffix


SURFACE = OpenAIEmbeddings()
