"""Complete answers from one API into the other: content, tool calls, stop reason, usage.

An answer holding anything the client's API cannot carry raises ``Untranslatable``: the
gateway then treats the attempt as a broken answer (fail closed), never relays part of it.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "FINISH_REASONS",
    "STOP_REASONS",
    "Untranslatable",
    "anthropic_answer",
    "anthropic_usage",
    "finish_reason",
    "openai_answer",
    "openai_usage",
    "stop_reason",
]


class Untranslatable(Exception):
    """An answer or event the client's API has no way to express."""


# Anthropic stop_reason -> OpenAI finish_reason.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# OpenAI finish_reason -> Anthropic stop_reason.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop: Any) -> str:
    try:
        return FINISH_REASONS[stop]
    except (KeyError, TypeError):
        raise Untranslatable(f"stop_reason {str(stop)[:32]}") from None


def stop_reason(finish: Any) -> str:
    try:
        return STOP_REASONS[finish]
    except (KeyError, TypeError):
        raise Untranslatable(f"finish_reason {str(finish)[:32]}") from None


def openai_usage(usage: Any) -> dict[str, Any]:
    """Anthropic usage as OpenAI's: prompt tokens include cache writes and reads, as
    OpenAI's own count includes cached tokens."""
    usage = usage if isinstance(usage, dict) else {}
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + (usage.get("cache_creation_input_tokens") or 0)
    prompt += cached
    completion = usage.get("output_tokens") or 0
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def anthropic_usage(usage: Any) -> dict[str, int]:
    """OpenAI usage as Anthropic's; the whole prompt count is ``input_tokens`` so the
    client and the audit trail see the tokens that were billed."""
    usage = usage if isinstance(usage, dict) else {}
    return {
        "input_tokens": usage.get("prompt_tokens") or 0,
        "output_tokens": usage.get("completion_tokens") or 0,
    }


def openai_answer(data: Any, created: int, answer_tool: str | None = None) -> dict[str, Any]:
    """An Anthropic message as an OpenAI chat.completion with one choice. A call to
    ``answer_tool`` (a JSON-schema answer, translate/structured.py) is the answer's text."""
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise Untranslatable("a message without content")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    answered = False
    for block in data["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str) and not block.get("citations"):
            texts.append(block["text"])
        elif (
            kind == "tool_use"
            and answer_tool is not None
            and block.get("name") == answer_tool
            and isinstance(block.get("input"), dict)
        ):
            texts.append(orjson.dumps(block["input"]).decode())
            answered = True
        elif kind == "tool_use" and isinstance(block.get("input"), dict):
            arguments = orjson.dumps(block["input"]).decode()
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
        else:
            raise Untranslatable(f"a content block {str(kind)[:32]}")
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    finish = finish_reason(data.get("stop_reason"))
    if finish == "tool_calls" and answered and not calls:  # only the answer tool was called
        finish = "stop"
    return {
        "id": data.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": data.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": openai_usage(data.get("usage")),
    }


def anthropic_answer(data: Any) -> dict[str, Any]:
    """An OpenAI chat.completion (one choice) as an Anthropic message."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        raise Untranslatable("an answer without exactly one choice")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise Untranslatable("a choice without a message")
    for key in ("audio", "function_call"):
        if message.get(key) is not None:
            raise Untranslatable(f"a message with {key}")
    if message.get("annotations"):
        raise Untranslatable("a message with annotations")
    content: list[dict[str, Any]] = []
    for key in ("content", "refusal"):
        text = message.get(key)
        if isinstance(text, str) and text:
            content.append({"type": "text", "text": text})
        elif text is not None and not isinstance(text, str):
            raise Untranslatable(f"a message {key} that is not a string")
    for call in message.get("tool_calls") or ():
        content.append(_tool_use(call))
    return {
        "id": data.get("id"),
        "type": "message",
        "role": "assistant",
        "model": data.get("model"),
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(data.get("usage")),
    }


def _tool_use(call: Any) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or call.get("type", "function") != "function":
        raise Untranslatable("a tool call that is not a function call")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        parsed = None
    if not isinstance(parsed, dict):  # Anthropic's tool input is always an object
        raise Untranslatable("tool call arguments that are not a JSON object")
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": parsed}
