"""A deterministic in-process provider that answers like a model: it quotes the last user
message it received, calls a tool when asked to, and writes JSON for a schema
(``mock_model.plan``), in every API it is asked in.

It lets a new user see, without any API key, exactly what left the gateway after policy, and
lets clients' tool loops and structured outputs run.
"""

from __future__ import annotations

import hashlib

import orjson

from gateway.normalized import Api, NormalizedRequest
from gateway.surfaces import COUNT_TOKENS, EMBEDDINGS, surface_of
from gateway.surfaces.anthropic_count_tokens import count_body
from gateway.upstream.mock_answers import embeddings, tool_call
from gateway.upstream.mock_model import plan
from gateway.upstream.provider import Timeouts, UpstreamResponse
from gateway.upstream.sse import replay

__all__ = ["MockProvider", "estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """About four characters a token, the usual rule of thumb for English text."""
    return max(1, (len(text) + 3) // 4)


class MockProvider:
    """``answer``: a canned answer to give instead of the quote (``gateway policy test``)."""

    def __init__(self, name: str, answer: str | None = None) -> None:
        self.name = name
        self._answer = answer

    def speaks(self, api: Api) -> bool:
        return True

    async def send(
        self, request: NormalizedRequest, upstream_model: str, timeouts: Timeouts
    ) -> UpstreamResponse:
        last_user = request.last_user_text()
        tokens_in = estimate_tokens("".join(slot.text for slot in request.texts))
        surface = surface_of(request)  # it answers in the API it was asked in
        if request.api == EMBEDDINGS.api:
            body = embeddings(request, upstream_model, tokens_in)
            return UpstreamResponse(200, "application/json", body=body)
        if request.api == COUNT_TOKENS.api:
            return UpstreamResponse(200, "application/json", body=count_body(tokens_in))
        planned = plan(request.body, last_user)
        if self._answer is not None:
            text = self._answer
        elif planned.tool is not None:
            arguments = orjson.dumps(planned.arguments).decode()
            answer_id = surface.answer_id(hashlib.sha256(arguments.encode()).hexdigest()[:24])
            usage = (tokens_in, estimate_tokens(arguments))
            body, events = tool_call(
                request, answer_id, upstream_model, planned.tool, arguments, usage
            )
            if not request.stream:
                return UpstreamResponse(200, "application/json", body=body)
            return UpstreamResponse(200, "text/event-stream", events=replay(events))
        elif planned.is_json:
            text = orjson.dumps(planned.json).decode()
        else:
            text = f"[mock {upstream_model}] You said: {last_user}"
        answer_id = hashlib.sha256(text.encode()).hexdigest()[:24]
        tokens_out = estimate_tokens(text)
        if not request.stream:
            body = surface.answer_body(
                surface.answer_id(answer_id), upstream_model, text, tokens_in, tokens_out
            )
            return UpstreamResponse(200, "application/json", body=body)
        pieces = [word + " " for word in text.split(" ")]
        pieces[-1] = pieces[-1].rstrip(" ")
        events = surface.answer_events(
            request, surface.answer_id(answer_id), upstream_model, pieces, tokens_in, tokens_out
        )
        return UpstreamResponse(200, "text/event-stream", events=replay(events))

    async def aclose(self) -> None:
        return None
