"""OpenAI Responses <-> Chat Completions: a Responses request for a model of another API goes
through the chat translator from here (Responses -> chat -> Anthropic), and its answer, whole
or streamed, comes back the same way (Anthropic -> chat -> Responses).

As in chat_messages.py, every field is carried over, mapped, or named below with the reason it
carries no content; anything else is refused with ``translate.unsupported``.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.surfaces.base import frame
from gateway.surfaces.openai_responses.answer import (
    function_item,
    message_item,
    response_object,
)
from gateway.translate.answer import Untranslatable
from gateway.translate.refuse import unsupported

__all__ = ["ResponsesEvents", "chat_request", "responses_answer"]

_TARGET = "Chat Completions"
# No content, and no counterpart past this API: storage and output-shaping settings.
_IGNORED = frozenset(
    {"store", "metadata", "include", "truncation", "service_tier", "prompt_cache_key",
     "safety_identifier", "reasoning", "stream_options", "background", "top_logprobs"}
)  # fmt: skip
_CARRIED = frozenset({"model", "stream", "temperature", "top_p", "parallel_tool_calls", "user"})
_MAPPED = frozenset({"input", "instructions", "tools", "tool_choice", "max_output_tokens", "text"})
_PARTS = {"input_text": "text", "output_text": "text", "refusal": "refusal"}


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses body as a chat completions body (``body`` is not changed)."""
    for key in body:
        if key not in _IGNORED | _CARRIED | _MAPPED:
            raise unsupported(key, _TARGET)
    out = {k: body[k] for k in _CARRIED if k in body}
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
    for i, item in enumerate(items if isinstance(items, list) else []):
        _item(item, i, messages)
    out["messages"] = messages
    if body.get("max_output_tokens") is not None:
        out["max_completion_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        out["tools"] = [_tool(t, i) for i, t in enumerate(body["tools"])]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        if choice.get("type") != "function":
            raise unsupported("tool_choice", _TARGET)
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif choice is not None:
        out["tool_choice"] = choice
    fmt = (body.get("text") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif isinstance(fmt, dict) and fmt.get("type") != "text":
        out["response_format"] = {"type": fmt.get("type")}
    return out


def _item(item: dict[str, Any], i: int, messages: list[dict[str, Any]]) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        content = item["content"]
        if isinstance(content, list):
            content = [_part(p, f"input[{i}]") for p in content]
            if item["role"] != "user":  # only user turns take parts beyond text everywhere
                content = "".join(p.get("text", p.get("refusal", "")) for p in content)
        messages.append({"role": item["role"], "content": content})
    elif kind == "function_call":
        call = {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item["output"]
        if not isinstance(output, str):
            output = "".join(_part(p, f"input[{i}].output").get("text", "") for p in output)
        messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
    elif kind != "reasoning":  # reasoning is opaque to any other provider: it stays behind
        raise unsupported(f"input[{i}] of type '{str(kind)[:32]}'", _TARGET)


def _part(part: dict[str, Any], where: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind in _PARTS:
        return {"type": "text", "text": part[_PARTS[kind]]}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        return {"type": "image_url", "image_url": {"url": part["image_url"]}}
    raise unsupported(f"{where} part '{str(kind)[:32]}'", _TARGET)


def _tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise unsupported(f"tools[{i}] of type '{str(tool.get('type'))[:32]}'", _TARGET)
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return {"type": "function", "function": function}


def _usage(usage: Any) -> tuple[int, int]:
    usage = usage if isinstance(usage, dict) else {}
    return usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0


def responses_answer(chat: Any, model: str) -> dict[str, Any]:
    """A chat.completion as a ``response`` object."""
    try:
        message = chat["choices"][0]["message"]
        answer_id = str(chat.get("id", ""))
    except (KeyError, IndexError, TypeError):
        raise Untranslatable("a completion without a message") from None
    output = []
    if message.get("content"):
        output.append(message_item("msg_" + answer_id, message["content"]))
    for call in message.get("tool_calls") or []:
        function = call["function"]
        output.append(
            function_item("fc_" + call["id"], call["id"], function["name"], function["arguments"])
        )
    return response_object("resp_" + answer_id, model, output, _usage(chat.get("usage")))


class ResponsesEvents:
    """``chat.completion.chunk``s (with a usage chunk) -> the Responses API's events."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ""
        self._items: list[tuple[dict[str, Any], list[str]]] = []
        self._open: dict[str, Any] | None = None  # the item being streamed
        self._calls: dict[int, int] = {}  # tool call index -> output index
        self._usage: Any = None
        self._n = 0

    def _event(self, event: dict[str, Any]) -> bytes:
        event["sequence_number"] = self._n
        self._n += 1
        return frame(event["type"], event)

    def feed(self, event: bytes) -> list[bytes]:
        data = event.partition(b"data:")[2].strip()
        if not data:
            return []
        if data == b"[DONE]":
            return self._finish()
        chunk = orjson.loads(data)
        out: list[bytes] = []
        if not self._id:
            self._id = "resp_" + str(chunk.get("id", ""))
            start = response_object(self._id, self._model, [], None, "in_progress")
            out += [
                self._event({"type": "response.created", "response": start}),
                self._event({"type": "response.in_progress", "response": start}),
            ]
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out += self._text(delta["content"])
            for call in delta.get("tool_calls") or []:
                out += self._call(call)
        return out

    def _text(self, piece: str) -> list[bytes]:
        out = []
        if self._open is None or self._open["type"] != "message":
            out += self._close()
            self._open = message_item(f"msg_{self._id}_{len(self._items)}", "")
            self._items.append((self._open, []))
            added = {**self._open, "status": "in_progress", "content": []}
            out.append(
                self._event({"type": "response.output_item.added", **self._at(), "item": added})
            )
            part = {"type": "output_text", "text": "", "annotations": []}
            out.append(
                self._event({"type": "response.content_part.added", **self._at(True), "part": part})
            )
        self._items[-1][1].append(piece)
        delta = {
            "type": "response.output_text.delta",
            **self._at(True),
            "delta": piece,
            "logprobs": [],
        }
        return [*out, self._event(delta)]

    def _call(self, call: dict[str, Any]) -> list[bytes]:
        out = []
        function = call.get("function") or {}
        if call.get("index", 0) not in self._calls:
            out += self._close()
            self._open = function_item("fc_" + call["id"], call["id"], function.get("name", ""), "")
            self._calls[call.get("index", 0)] = len(self._items)
            self._items.append((self._open, []))
            added = {**self._open, "status": "in_progress"}
            out.append(
                self._event({"type": "response.output_item.added", **self._at(), "item": added})
            )
        piece = function.get("arguments") or ""
        if piece:
            self._items[-1][1].append(piece)
            delta = {"type": "response.function_call_arguments.delta", **self._at(), "delta": piece}
            delta["item_id"] = self._items[-1][0]["id"]
            out.append(self._event(delta))
        return out

    def _at(self, part: bool = False) -> dict[str, Any]:
        at: dict[str, Any] = {"output_index": len(self._items) - 1}
        if part:
            at |= {"item_id": self._items[-1][0]["id"], "content_index": 0}
        return at

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        item, pieces = self._items[-1]
        text = "".join(pieces)
        at = {"output_index": len(self._items) - 1, "item_id": item["id"]}
        self._open = None
        if item["type"] == "function_call":
            item["arguments"] = text
            return [
                self._event(
                    {
                        "type": "response.function_call_arguments.done",
                        **at,
                        "name": item["name"],
                        "arguments": text,
                    }
                ),
                self._event(
                    {
                        "type": "response.output_item.done",
                        "output_index": at["output_index"],
                        "item": item,
                    }
                ),
            ]
        item["content"][0]["text"] = text
        part = {"type": "output_text", "text": text, "annotations": []}
        return [
            self._event(
                {
                    "type": "response.output_text.done",
                    **at,
                    "content_index": 0,
                    "text": text,
                    "logprobs": [],
                }
            ),
            self._event(
                {"type": "response.content_part.done", **at, "content_index": 0, "part": part}
            ),
            self._event(
                {
                    "type": "response.output_item.done",
                    "output_index": at["output_index"],
                    "item": item,
                }
            ),
        ]

    def _finish(self) -> list[bytes]:
        out = self._close()
        done = response_object(
            self._id, self._model, [item for item, _ in self._items], _usage(self._usage)
        )
        return [*out, self._event({"type": "response.completed", "response": done})]
