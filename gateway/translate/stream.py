"""Event streams from one API into the other, one upstream SSE event at a time.

Each translator is a small state machine fed whole events (``feed``) that returns the
client's events for it, possibly none (``ping``) or several (the end of a stream). An event
of a shape it does not know, an upstream ``error`` event, or a stream that ends before its
stop reason raises ``Untranslatable``: the gateway then ends the client's stream with an
error event, never with a success that would hide lost content.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.translate.answer import (
    Untranslatable,
    anthropic_usage,
    finish_reason,
    openai_usage,
    stop_reason,
)

__all__ = ["AnthropicEvents", "OpenAIChunks", "sse_data"]

_DONE = b"data: [DONE]\n\n"
_TEXT_CHOICE = (
    b'[{"index":0,"delta":{"content":',
    b'},"logprobs":null,"finish_reason":null}]}\n\n',
)


def sse_data(event: bytes) -> bytes | None:
    """The data of one SSE event (multi-line data joined); None for a comment-only event."""
    start = event.find(b"data:")
    end = event.find(b"\n", start)
    # The usual event: one data line, at the start or after an ``event:`` line.
    if start >= 0 and (start == 0 or event[start - 1] == 10) and event.find(b"\ndata:", end) < 0:
        value = event[start + 5 : end if end >= 0 else len(event)]
        return value[1:] if value[:1] == b" " else value
    lines = [line[5:] for line in event.split(b"\n") if line.startswith(b"data:")]
    if not lines:
        return None
    return b"\n".join(line[1:] if line.startswith(b" ") else line for line in lines)


def _object(data: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise Untranslatable("an event that is not JSON") from None
    if not isinstance(value, dict):
        raise Untranslatable("an event that is not a JSON object")
    return value


class OpenAIChunks:
    """Anthropic message events -> OpenAI ``chat.completion.chunk``s ending in ``[DONE]``.

    Usage goes in a final chunk with no choices when the client asked for it
    (``stream_options.include_usage``), else on the finish chunk, so the audit trail always
    has the counts and a client reading ``choices[0]`` never meets an empty chunk.
    """

    def __init__(self, created: int, include_usage: bool, answer_tool: str | None = None) -> None:
        self._created = created
        self._include_usage = include_usage
        self._answer_tool = answer_tool  # its calls are the answer's text (structured.py)
        self._head = b""  # the start of every chunk, up to its choices
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._answers: set[int] = set()  # content block indexes of answer tool calls
        self._usage: dict[str, Any] = {}
        self._finished = False

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        # Every chunk repeats id, created and model: serialized once, at message_start.
        tail = b"}\n\n" if usage is None else b',"usage":' + orjson.dumps(usage) + b"}\n\n"
        return self._head + orjson.dumps(choices) + tail

    def _delta(self, delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    def feed(self, event: bytes) -> list[bytes]:
        raw = sse_data(event)
        if raw is None:
            return []
        data = _object(raw)
        kind = data.get("type")
        if kind == "content_block_delta":  # first: nearly every event is one
            return self._block_delta(data)
        if kind == "message_start":
            message = data.get("message")
            if not isinstance(message, dict) or message.get("content"):
                raise Untranslatable("a message_start with content")
            head = {
                "id": str(message.get("id", "")),
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": str(message.get("model", "")),
            }
            self._head = b"data: " + orjson.dumps(head)[:-1] + b',"choices":'
            self._note_usage(message.get("usage"))
            return [self._chunk(self._delta({"role": "assistant", "content": ""}))]
        if kind == "content_block_start":
            return self._block_start(data)
        if kind in ("content_block_stop", "ping"):
            return []
        if kind == "message_delta":
            delta = data.get("delta")
            stop = finish_reason(delta.get("stop_reason") if isinstance(delta, dict) else None)
            if stop == "tool_calls" and self._answers and not self._tools:  # the answer tool only
                stop = "stop"
            self._note_usage(data.get("usage"))
            self._finished = True
            usage = None if self._include_usage else openai_usage(self._usage)
            return [self._chunk(self._delta({}, stop), usage)]
        if kind == "message_stop":
            if not self._finished:
                raise Untranslatable("a message_stop before its stop reason")
            if self._include_usage:
                return [self._chunk([], openai_usage(self._usage)), _DONE]
            return [_DONE]
        if kind == "error":
            error = data.get("error")
            what = error.get("type") if isinstance(error, dict) else None
            raise Untranslatable(f"an upstream error event ({str(what)[:32]})")
        raise Untranslatable(f"an event {str(kind)[:32]}")

    def _note_usage(self, usage: Any) -> None:
        # message_delta counts are cumulative: a present value overwrites message_start's.
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _block_start(self, data: dict[str, Any]) -> list[bytes]:
        block = data.get("content_block")
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block, dict) and not block.get("citations"):
            text = block.get("text")
            return [self._chunk(self._delta({"content": text}))] if text else []
        answer = self._answer_tool is not None and kind == "tool_use"
        if answer and isinstance(block, dict) and block.get("name") == self._answer_tool:
            self._answers.add(data.get("index", -1))
            text = orjson.dumps(block["input"]).decode() if block.get("input") else None
            return [self._chunk(self._delta({"content": text}))] if text else []
        if kind == "tool_use" and isinstance(block, dict):
            call = self._tools[data.get("index", -1)] = len(self._tools)
            function = {"name": block.get("name"), "arguments": ""}
            if block.get("input"):
                function["arguments"] = orjson.dumps(block["input"]).decode()
            start = {"index": call, "id": block.get("id"), "type": "function", "function": function}
            return [self._chunk(self._delta({"tool_calls": [start]}))]
        raise Untranslatable(f"a content block {str(kind)[:32]}")

    def _block_delta(self, data: dict[str, Any]) -> list[bytes]:
        delta = data.get("delta")
        kind = delta.get("type") if isinstance(delta, dict) else None
        if kind == "text_delta" and isinstance(delta, dict):
            # The bulk of a stream: its bytes are written around the one string.
            text = orjson.dumps(delta.get("text"))
            return [self._head + _TEXT_CHOICE[0] + text + _TEXT_CHOICE[1]]
        if kind == "input_json_delta" and isinstance(delta, dict):
            if data.get("index", -1) in self._answers:
                piece = delta.get("partial_json")
                return [self._chunk(self._delta({"content": piece}))] if piece else []
            call = self._tools.get(data.get("index", -1))
            if call is None:
                raise Untranslatable("tool input for a block that is not a tool call")
            piece = {"index": call, "function": {"arguments": delta.get("partial_json")}}
            return [self._chunk(self._delta({"tool_calls": [piece]}))]
        raise Untranslatable(f"a content delta {str(kind)[:32]}")


def _event(name: bytes, data: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(data) + b"\n\n"


_STOP_BLOCK = b"content_block_stop"
_OPENAI_DELTA_KEYS = frozenset({"role", "content", "refusal", "tool_calls"})


class AnthropicEvents:
    """OpenAI chunks -> Anthropic message events ending in ``message_stop``.

    OpenAI reports usage after the finish chunk (the upstream request asks for it), so
    ``message_delta`` and ``message_stop`` are sent at ``[DONE]`` with the real counts.
    """

    def __init__(self) -> None:
        self._started = False
        self._blocks = 0  # content blocks opened so far
        self._open: str | None = None  # "text" or "tool" while a block is open
        self._tool = -1  # OpenAI tool call index of the open tool block
        self._stop: str | None = None
        self._usage: dict[str, Any] = {}

    def feed(self, event: bytes) -> list[bytes]:
        raw = sse_data(event)
        if raw is None:
            return []
        if raw == b"[DONE]":
            return self._done()
        data = _object(raw)
        if data.get("error") is not None:
            raise Untranslatable("an upstream error chunk")
        out: list[bytes] = []
        if not self._started:
            self._started = True
            message: dict[str, Any] = {
                "id": data.get("id"),
                "type": "message",
                "role": "assistant",
                "model": data.get("model"),
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
            out.append(_event(b"message_start", {"type": "message_start", "message": message}))
        if data.get("usage"):
            self._usage = data["usage"]
        choices = data.get("choices") or ()
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                raise Untranslatable("a chunk for a second choice")
            delta = choice.get("delta") or {}
            for key, value in delta.items():
                if key not in _OPENAI_DELTA_KEYS and value is not None:
                    raise Untranslatable(f"a delta with {str(key)[:32]}")
            for key in ("content", "refusal"):
                if delta.get(key):
                    out += self._text(delta[key])
            for call in delta.get("tool_calls") or ():
                out += self._tool_call(call)
            if choice.get("finish_reason") is not None:
                out += self._close()
                self._stop = stop_reason(choice["finish_reason"])
        return out

    def _text(self, text: str) -> list[bytes]:
        out = []
        if self._open != "text":
            out = self._close()
            out.append(self._start({"type": "text", "text": ""}))
            self._open = "text"
        head = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d' % (
            self._blocks - 1
        )
        out.append(head + b',"delta":{"type":"text_delta","text":' + orjson.dumps(text) + b"}}\n\n")
        return out

    def _tool_call(self, call: Any) -> list[bytes]:
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise Untranslatable("a tool call that is not a function call")
        function = call.get("function") or {}
        out = []
        if call.get("id") is not None:  # a new call starts
            out = self._close()
            block = {
                "type": "tool_use",
                "id": call["id"],
                "name": function.get("name"),
                "input": {},
            }
            out.append(self._start(block))
            self._open, self._tool = "tool", call.get("index", 0)
        elif self._open != "tool" or call.get("index", 0) != self._tool:
            raise Untranslatable("tool call deltas interleaved between calls")
        if function.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": function["arguments"]}
            out.append(
                _event(
                    b"content_block_delta",
                    {"type": "content_block_delta", "index": self._blocks - 1, "delta": delta},
                )
            )
        return out

    def _start(self, block: dict[str, Any]) -> bytes:
        self._blocks += 1
        data = {"type": "content_block_start", "index": self._blocks - 1, "content_block": block}
        return _event(b"content_block_start", data)

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        self._open = None
        return [_event(_STOP_BLOCK, {"type": "content_block_stop", "index": self._blocks - 1})]

    def _done(self) -> list[bytes]:
        if self._stop is None:
            raise Untranslatable("a stream that ended without a finish reason")
        delta = {"stop_reason": self._stop, "stop_sequence": None}
        usage = anthropic_usage(self._usage)
        return [
            *self._close(),
            _event(b"message_delta", {"type": "message_delta", "delta": delta, "usage": usage}),
            _event(b"message_stop", {"type": "message_stop"}),
        ]
