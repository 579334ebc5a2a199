"""Read an answer for the checks: the text and logprobs of each choice, whole or streamed.

``strip`` removes the logprobs the gateway asked for on the client's behalf (the client did
not), so the client gets the answer it would have had without the check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway import errors
from gateway.errors import GatewayError
from gateway.normalized import Api
from gateway.quality.checks import Choice
from gateway.upstream.provider import UpstreamFailure

__all__ = ["read_body", "read_stream"]


def _broken(detail: str) -> GatewayError:
    return GatewayError(errors.UPSTREAM_BROKEN_STREAM, detail=detail)


def _logprobs(choice: dict[str, Any]) -> list[float]:
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return []
    return [t["logprob"] for t in content if isinstance(t, dict) and "logprob" in t]


def read_body(api: Api, body: bytes, strip: bool) -> tuple[list[Choice], bytes]:
    """The choices of a whole answer, and the body to send on (logprobs stripped if asked)."""
    data = orjson.loads(body)  # the upstream client checked it is JSON
    if not isinstance(data, dict):
        return [], body
    if api == "anthropic_messages":
        blocks = data.get("content")
        texts = [
            b["text"]
            for b in (blocks if isinstance(blocks, list) else [])
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        ]
        return [Choice("".join(texts) if texts else None)], body
    choices: list[Choice] = []
    changed = False
    for raw in data.get("choices") or []:
        if not isinstance(raw, dict):
            continue
        message = raw.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        choices.append(Choice(content if isinstance(content, str) else None, _logprobs(raw)))
        if strip and raw.get("logprobs") is not None:
            raw["logprobs"] = None
            changed = True
    return choices, orjson.dumps(data) if changed else body


async def read_stream(
    api: Api, events: AsyncIterator[bytes], strip: bool
) -> tuple[list[Choice], list[bytes]]:
    """Every event of a stream, held: the choices and the events to replay. A stream that
    breaks, carries an error event or ends without its final event raises
    ``upstream.broken_stream``: nothing of it has reached the client, so a fallback may answer.
    """
    choices: dict[int, Choice] = {}
    held: list[bytes] = []
    done = False
    read = _openai_event if api == "openai_chat" else _anthropic_event
    try:
        async for event in events:
            replay, done = read(event, choices, strip)
            held.append(replay)
    except UpstreamFailure as exc:
        raise _broken(str(exc)) from exc
    if not done:
        raise _broken("the stream ended without its final event")
    for choice in choices.values():
        choice.finish()
    return [choices[i] for i in sorted(choices)], held


def _data(event: bytes) -> tuple[bytes | None, bytes]:
    """The event's data payload and its ``event:`` name (b"" when none)."""
    name, payload = b"", None
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            payload = line[5:].strip()
        elif line.startswith(b"event:"):
            name = line[6:].strip()
    return payload, name


def _openai_event(event: bytes, choices: dict[int, Choice], strip: bool) -> tuple[bytes, bool]:
    payload, _ = _data(event)
    if payload is None:
        return event, False
    if payload == b"[DONE]":
        return event, True
    chunk = _json(payload)
    if "error" in chunk:
        raise _broken("an error event")
    changed = False
    for raw in chunk.get("choices") or []:
        if not isinstance(raw, dict):
            continue
        choice = choices.setdefault(raw.get("index", 0), Choice())
        delta = raw.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str):
            choice.parts.append(content)
        if raw.get("logprobs") is not None:
            choice.logprobs = (choice.logprobs or []) + _logprobs(raw)
            if strip:
                raw["logprobs"] = None
                changed = True
    return (b"data: " + orjson.dumps(chunk) + b"\n\n" if changed else event), False


def _anthropic_event(event: bytes, choices: dict[int, Choice], strip: bool) -> tuple[bytes, bool]:
    payload, name = _data(event)
    if payload is None:
        return event, False
    data = _json(payload)
    kind = data.get("type", name.decode())
    if kind == "error":
        raise _broken("an error event")
    if kind == "content_block_delta":
        delta = data.get("delta")
        if isinstance(delta, dict) and delta.get("type") == "text_delta":
            choices.setdefault(0, Choice()).parts.append(str(delta.get("text", "")))
    return event, kind == "message_stop"


def _json(payload: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise _broken("an event that is not JSON") from None
    if not isinstance(data, dict):
        raise _broken("an event that is not an object")
    return data
