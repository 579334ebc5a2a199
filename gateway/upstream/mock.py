"""A deterministic in-process provider: it quotes the last user message it received.

It lets a new user see, without any API key, exactly what left the gateway after policy.
"""

from __future__ import annotations

import hashlib

from gateway.normalized import Api, NormalizedRequest
from gateway.surfaces import anthropic_messages, openai_chat
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
        if self._answer is not None:
            text = self._answer
        else:
            text = f"[mock {upstream_model}] You said: {request.last_user_text()}"
        answer_id = hashlib.sha256(text.encode()).hexdigest()[:24]
        tokens_in = estimate_tokens("".join(slot.text for slot in request.texts))
        tokens_out = estimate_tokens(text)
        anthropic = request.api == "anthropic_messages"
        if not request.stream:
            surface = anthropic_messages if anthropic else openai_chat
            body = surface.answer_body(
                ("msg_" if anthropic else "chatcmpl-") + answer_id,
                upstream_model,
                text,
                tokens_in,
                tokens_out,
            )
            return UpstreamResponse(200, "application/json", body=body)
        pieces = [word + " " for word in text.split(" ")]
        pieces[-1] = pieces[-1].rstrip(" ")
        if anthropic:
            events = anthropic_messages.answer_events(
                "msg_" + answer_id, upstream_model, pieces, tokens_in, tokens_out
            )
        else:
            options = request.body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            events = openai_chat.answer_events(
                "chatcmpl-" + answer_id,
                upstream_model,
                pieces,
                tokens_in,
                tokens_out,
                include_usage,
            )
        return UpstreamResponse(200, "text/event-stream", events=replay(events))

    async def aclose(self) -> None:
        return None
