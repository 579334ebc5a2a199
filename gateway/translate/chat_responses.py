"""Chat Completions -> the Responses API, for a model that serves only the Responses API
(``endpoints: [responses]`` in ``gateway.yaml``): the request on the way out, the answer and
its stream on the way back. As everywhere in translate/, a field is carried, mapped, or named
with the reason it carries no content; anything else is ``translate.unsupported``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway import errors
from gateway.errors import GatewayError
from gateway.normalized import Api, NormalizedRequest
from gateway.surfaces import OPENAI, RESPONSES
from gateway.surfaces.openai_chat import include_usage
from gateway.translate.answer import Untranslatable
from gateway.translate.refuse import unsupported
from gateway.upstream.provider import Provider, Timeouts, UpstreamFailure, UpstreamResponse

__all__ = ["ChatChunks", "ViaResponses", "chat_answer", "responses_request"]

_TARGET = "the Responses API"
# No content, no counterpart: usage options (the Responses stream always has it), logprobs.
_IGNORED = frozenset({"stream_options", "logprobs", "top_logprobs", "seed", "n"})
_CARRIED = frozenset(
    {"model", "stream", "temperature", "top_p", "parallel_tool_calls", "user", "store",
     "metadata", "service_tier"}
)  # fmt: skip
_MAPPED = frozenset(
    {"messages", "tools", "tool_choice", "max_tokens", "max_completion_tokens", "response_format"}
)


def responses_request(body: dict[str, Any]) -> dict[str, Any]:
    """A chat completions body as a Responses body (``body`` is not changed)."""
    for key in body:
        if key not in _IGNORED | _CARRIED | _MAPPED:
            raise unsupported(key, _TARGET)
    if body.get("n") not in (None, 1):
        raise unsupported("n", _TARGET)
    out = {k: body[k] for k in _CARRIED if k in body}
    items: list[dict[str, Any]] = []
    for i, message in enumerate(body["messages"]):
        items += _items(message, i)
    out["input"] = items
    ceiling = body.get("max_completion_tokens", body.get("max_tokens"))
    if ceiling is not None:
        out["max_output_tokens"] = ceiling
    if body.get("tools"):
        out["tools"] = [_tool(t, i) for i, t in enumerate(body["tools"])]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        out["tool_choice"] = {"type": "function", "name": choice["function"]["name"]}
    elif choice is not None:
        out["tool_choice"] = choice
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        out["text"] = {"format": {"type": "json_schema", **fmt["json_schema"]}}
    elif isinstance(fmt, dict):
        out["text"] = {"format": {"type": fmt["type"]}}
    return out


def _items(message: dict[str, Any], i: int) -> list[dict[str, Any]]:
    role, content = message["role"], message.get("content")
    if role == "tool":
        text = content if isinstance(content, str) else "".join(p["text"] for p in content or ())
        return [
            {"type": "function_call_output", "call_id": message["tool_call_id"], "output": text}
        ]
    if role not in ("system", "developer", "user", "assistant"):
        raise unsupported(f"messages[{i}] with role '{str(role)[:32]}'", _TARGET)
    out: list[dict[str, Any]] = []
    kind = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str) and content:
        out.append({"type": "message", "role": role, "content": content})
    elif isinstance(content, list):
        out.append(
            {"type": "message", "role": role, "content": [_part(p, kind, i) for p in content]}
        )
    for call in message.get("tool_calls") or []:
        function = call["function"]
        out.append(
            {
                "type": "function_call",
                "call_id": call["id"],
                "name": function["name"],
                "arguments": function["arguments"],
            }
        )
    return out


def _part(part: dict[str, Any], kind: str, i: int) -> dict[str, Any]:
    if part.get("type") == "text":
        return {"type": kind, "text": part["text"]}
    if part.get("type") == "image_url":
        return {"type": "input_image", "image_url": part["image_url"]["url"]}
    raise unsupported(f"messages[{i}] part '{str(part.get('type'))[:32]}'", _TARGET)


def _tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise unsupported(f"tools[{i}]", _TARGET)
    function = tool["function"]
    keys = ("name", "description", "parameters", "strict")
    return {"type": "function", **{k: function[k] for k in keys if k in function}}


def _usage(usage: Any) -> dict[str, int]:
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = usage.get("input_tokens") or 0, usage.get("output_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _calls_and_text(output: list[Any]) -> tuple[str | None, list[dict[str, Any]]]:
    texts, calls = [], []
    for item in output:
        if item.get("type") == "message":
            texts += [p["text"] for p in item["content"] if p.get("type") == "output_text"]
        elif item.get("type") == "function_call":
            function = {"name": item["name"], "arguments": item["arguments"]}
            calls.append({"id": item["call_id"], "type": "function", "function": function})
        elif item.get("type") != "reasoning":
            raise Untranslatable(f"an output item {str(item.get('type'))[:32]}")
    return ("".join(texts) if texts else None), calls


def chat_answer(data: Any, created: int) -> dict[str, Any]:
    """A ``response`` object as a chat.completion with one choice."""
    if not isinstance(data, dict) or not isinstance(data.get("output"), list):
        raise Untranslatable("a response without output")
    text, calls = _calls_and_text(data["output"])
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    finish = "tool_calls" if calls else "length" if data.get("status") == "incomplete" else "stop"
    return {
        "id": "chatcmpl-" + str(data.get("id", "")),
        "object": "chat.completion",
        "created": created,
        "model": str(data.get("model", "")),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage(data.get("usage")),
    }


class ChatChunks:
    """Responses events -> ``chat.completion.chunk``s ending in ``[DONE]``."""

    def __init__(self, created: int, include_usage: bool) -> None:
        self._created = created
        self._include_usage = include_usage
        self._head: dict[str, Any] = {}
        self._calls: dict[int, int] = {}  # output index -> tool call index

    def _chunk(
        self, delta: dict[str, Any] | None, finish: str | None = None, **extra: Any
    ) -> bytes:
        choices = [] if delta is None else [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        ]  # fmt: skip
        chunk = {**self._head, "object": "chat.completion.chunk", "choices": choices, **extra}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def feed(self, event: bytes) -> list[bytes]:
        raw = event.partition(b"data:")[2].strip()
        if not raw:
            return []
        data = orjson.loads(raw)
        kind = data.get("type")
        if kind == "response.created":
            response = data["response"]
            self._head = {
                "id": "chatcmpl-" + str(response.get("id", "")),
                "created": self._created,
                "model": str(response.get("model", "")),
            }
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "response.output_text.delta":
            return [self._chunk({"content": data["delta"]})]
        if kind == "response.refusal.delta":
            return [self._chunk({"refusal": data["delta"]})]
        if kind == "response.output_item.added" and data["item"].get("type") == "function_call":
            item, index = data["item"], len(self._calls)
            self._calls[data["output_index"]] = index
            call = {"index": index, "id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": ""}}  # fmt: skip
            return [self._chunk({"tool_calls": [call]})]
        if kind == "response.function_call_arguments.delta":
            call = {
                "index": self._calls[data["output_index"]],
                "function": {"arguments": data["delta"]},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind in ("response.completed", "response.incomplete"):
            response = data["response"]
            finish = (
                "tool_calls" if self._calls else "length" if kind.endswith("incomplete") else "stop"
            )
            usage = _usage(response.get("usage"))
            if self._include_usage:
                return [
                    self._chunk({}, finish),
                    self._chunk(None, usage=usage),
                    b"data: [DONE]\n\n",
                ]
            return [self._chunk({}, finish, usage=usage), b"data: [DONE]\n\n"]
        if kind in ("error", "response.failed"):
            raise Untranslatable("an upstream error event")
        return []  # the rest repeat what the deltas said, carry no text, or are reasoning


class ViaResponses:
    """A provider taking a chat request for a model that serves only the Responses API: the
    request goes out translated, the answer (whole or streamed) comes back as chat."""

    def __init__(self, inner: Provider) -> None:
        self.name = inner.name
        self._inner = inner

    def speaks(self, api: Api) -> bool:
        return api == OPENAI.api

    async def send(
        self, request: NormalizedRequest, upstream_model: str, timeouts: Timeouts
    ) -> UpstreamResponse:
        try:
            body = responses_request(request.body)
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise GatewayError(errors.REQUEST_INVALID, detail=f"translation: {exc!r}") from None
        # Parsed as a client's Responses request would be: its text slots are what the mock
        # answers from (the text was inspected in the chat request already).
        translated = RESPONSES.parse(orjson.dumps(body))
        response = await self._inner.send(translated, upstream_model, timeouts)
        created = int(time.time())
        if response.events is not None:
            chunks = ChatChunks(created, include_usage(request.body))
            events = _chunks(response.events, chunks)
            return UpstreamResponse(response.status, "text/event-stream", events=events)
        try:
            answer = chat_answer(orjson.loads(response.body or b""), created)
        except (Untranslatable, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise UpstreamFailure("broken", f"untranslatable answer: {exc!r}") from None
        return UpstreamResponse(response.status, "application/json", body=orjson.dumps(answer))

    async def aclose(self) -> None:
        return None  # the inner provider belongs to the app


async def _chunks(events: AsyncIterator[bytes], chunks: ChatChunks) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            try:
                out = chunks.feed(event)
            except (Untranslatable, orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise UpstreamFailure("broken", f"untranslatable stream: {exc!r}") from None
            for chunk in out:
                yield chunk
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
