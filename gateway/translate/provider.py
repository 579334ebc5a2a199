"""A provider that takes requests in either API: requests in the other API are translated
on the way out, and answers, streams and errors on the way back.

Everything before and after the provider (access, the data boundary, usage, relay, audit)
keeps seeing the client's API, so a fallback chain may mix providers without knowing it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import orjson

from gateway import errors
from gateway.errors import GatewayError
from gateway.normalized import Api, NormalizedRequest
from gateway.surfaces import ANTHROPIC, OPENAI, RESPONSES, openai_chat, surface_of
from gateway.translate.answer import Untranslatable, anthropic_answer, openai_answer
from gateway.translate.chat_messages import anthropic_request
from gateway.translate.errors import upstream_error
from gateway.translate.messages_chat import openai_request
from gateway.translate.responses import ResponsesEvents, chat_request, responses_answer
from gateway.translate.stream import AnthropicEvents, OpenAIChunks
from gateway.translate.structured import answer_tool_of
from gateway.upstream.provider import (
    Provider,
    StoredState,
    Timeouts,
    UpstreamFailure,
    UpstreamResponse,
)

__all__ = ["Translating", "translate_request"]

# One translator per API pair: chat and messages each into the other; Responses into
# messages through chat (translate/responses.py).
_OTHER: dict[Api, Api] = {
    OPENAI.api: ANTHROPIC.api,
    ANTHROPIC.api: OPENAI.api,
    RESPONSES.api: ANTHROPIC.api,
}


def translate_request(request: NormalizedRequest) -> NormalizedRequest:
    """``request`` in the other API; raises GatewayError (400) for what it cannot express."""
    target = _OTHER[request.api]
    try:
        if request.api == RESPONSES.api:
            body = anthropic_request(chat_request(request.body))
        elif target == ANTHROPIC.api:
            body = anthropic_request(request.body)
        else:
            body = openai_request(request.body)
    # The surfaces checked only the fields the gateway reads: a malformed part elsewhere
    # surfaces here as a lookup on the wrong type.
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise GatewayError(errors.REQUEST_INVALID, detail=f"translation: {exc!r}") from None
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    return NormalizedRequest(target, body, request.model, request.stream, max_tokens)


class Translating:
    """Wraps a provider so it takes requests in both APIs; the native one goes straight in."""

    def __init__(self, inner: Provider) -> None:
        self.name = inner.name
        self._inner = inner

    def speaks(self, api: Api) -> bool:
        return self._inner.speaks(api) or api in _OTHER

    def native(self, api: Api) -> Provider:
        """The provider to send ``api``'s requests to: the inner one if it speaks ``api``
        (one coroutine less per request than going through ``send``), else this."""
        return self._inner if self._inner.speaks(api) else self

    async def send(
        self, request: NormalizedRequest, upstream_model: str, timeouts: Timeouts
    ) -> UpstreamResponse:
        if self._inner.speaks(request.api):
            return await self._inner.send(request, upstream_model, timeouts)
        translated = translate_request(request)
        answer_tool = answer_tool_of(translated.body)  # a JSON-schema answer, as a tool call
        try:
            response = await self._inner.send(translated, upstream_model, timeouts)
        except UpstreamFailure as exc:
            raise _failure(exc, request.api) from exc
        if response.events is not None:
            translator: OpenAIChunks | AnthropicEvents | _Chained
            if request.api == RESPONSES.api:
                chunks = OpenAIChunks(int(time.time()), True, answer_tool)
                translator = _Chained(chunks, ResponsesEvents(request.model))
            elif request.api == OPENAI.api:
                usage = openai_chat.include_usage(request.body)
                translator = OpenAIChunks(int(time.time()), usage, answer_tool)
            else:
                translator = AnthropicEvents()
            events = _translate_events(response.events, translator)
            return UpstreamResponse(response.status, "text/event-stream", events=events)
        try:
            data = orjson.loads(response.body or b"")
            if request.api == RESPONSES.api:
                chat = openai_answer(data, int(time.time()), answer_tool)
                answer = responses_answer(chat, str(chat.get("model", request.model)))
            elif request.api == OPENAI.api:
                answer = openai_answer(data, int(time.time()), answer_tool)
            else:
                answer = anthropic_answer(data)
        except (Untranslatable, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise UpstreamFailure("broken", f"untranslatable answer: {exc!r}") from None
        return UpstreamResponse(response.status, "application/json", body=orjson.dumps(answer))

    async def stored(self, method: str, path: str, timeouts: Timeouts) -> UpstreamResponse:
        """State the provider kept, where it keeps any (OpenAI); elsewhere there is none."""
        if not isinstance(self._inner, StoredState):
            raise UpstreamFailure("status", "no stored state", status=404)
        return await self._inner.stored(method, path, timeouts)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _failure(exc: UpstreamFailure, client: Api) -> UpstreamFailure:
    """The same failure, its error body (relayed for a 4xx) in the client's API shape."""
    body = exc.body
    if exc.status is not None:
        body = upstream_error(surface_of(client), exc.body, exc.status)
    return UpstreamFailure(
        exc.kind,
        str(exc).partition(": ")[2],
        status=exc.status,
        retry_after=exc.retry_after,
        body=body,
        content_type="application/json" if body is not None else exc.content_type,
    )


class _Chained:
    """Two translators one after the other (Anthropic -> chat -> Responses)."""

    def __init__(self, first: OpenAIChunks, second: ResponsesEvents) -> None:
        self._first, self._second = first, second

    def feed(self, event: bytes) -> list[bytes]:
        return [out for mid in self._first.feed(event) for out in self._second.feed(mid)]


async def _translate_events(
    events: AsyncIterator[bytes], translator: OpenAIChunks | AnthropicEvents | _Chained
) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            try:
                out = translator.feed(event)
            except Untranslatable as exc:
                raise UpstreamFailure("broken", f"untranslatable stream: {exc}") from None
            for translated in out:
                yield translated
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
