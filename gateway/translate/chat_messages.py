"""OpenAI Chat Completions -> Anthropic Messages: a chat request for a model served through
the Anthropic API (a fallback, or a Claude model asked for by an OpenAI client).

Every field is either carried over, mapped, or named in an ignore list with the reason it
carries no content; anything else is refused with ``translate.unsupported`` so no content is
ever dropped unnoticed. A JSON-schema ``response_format`` becomes the answer tool
(``structured.py``). The input body is never mutated: a retry translates it again.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.translate.refuse import check_keys, unsupported
from gateway.translate.structured import answer_tool, with_answer_tool

__all__ = ["DEFAULT_MAX_TOKENS", "anthropic_request"]

# Anthropic requires max_tokens; an OpenAI request may omit it. The access step has already
# written the policy's ``max_output_tokens`` into the body when one is set, so this default
# applies only to workflows without a ceiling.
DEFAULT_MAX_TOKENS = 4096

# OpenAI fields with no content and no Anthropic counterpart: stored-completion settings,
# usage options (Anthropic always reports usage), and logprobs (the answer carries none).
_OPENAI_IGNORED = frozenset(
    {"store", "metadata", "stream_options", "logprobs", "top_logprobs", "seed", "service_tier"}
)
# OpenAI fields accepted only at their neutral value, which Anthropic's behaviour matches.
_OPENAI_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "frequency_penalty": (0, 0.0),
    "presence_penalty": (0, 0.0),
    "logit_bias": ({},),
}
_OPENAI_MAPPED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "response_format",
    }
)
_A = "Anthropic Messages"


def anthropic_request(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat completion request as an Anthropic messages request.

    >>> anthropic_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})[
    ...     "messages"]
    [{'role': 'user', 'content': [{'type': 'text', 'text': 'hi'}]}]
    """
    for key, value in body.items():
        if value is None or key in _OPENAI_MAPPED or key in _OPENAI_IGNORED:
            continue
        if value not in _OPENAI_NEUTRAL.get(key, ()):
            raise unsupported(f"'{key}'", _A)
    system, messages = _anthropic_messages(body["messages"])
    out: dict[str, Any] = {"model": body["model"], "messages": messages}
    if system:
        out["system"] = system
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    out["max_tokens"] = limit if limit is not None else DEFAULT_MAX_TOKENS
    for key in ("temperature", "top_p", "stream"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop is not None:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user") is not None:
        out["metadata"] = {"user_id": body["user"]}
    if body.get("tools"):
        out["tools"] = [_anthropic_tool(t, i) for i, t in enumerate(body["tools"])]
    choice = _anthropic_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None and body.get("tools"):
        out["tool_choice"] = choice
    tool = answer_tool(body.get("response_format"))
    if tool is not None:
        with_answer_tool(out, tool)
    return out


def _anthropic_messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """System prompts moved to ``system`` (in order), the rest as alternating turns: tool
    results become user turns and consecutive turns of one role are merged, as Anthropic
    itself reads them."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role, where = message["role"], f"messages[{i}]."
        if role in ("system", "developer"):
            check_keys(message, {"role", "content"}, where, _A)
            system += _texts(message.get("content"), where, role)
            continue
        if role == "user":
            check_keys(message, {"role", "content"}, where, _A)
            blocks = _anthropic_blocks(message.get("content"), where)
        elif role == "assistant":
            check_keys(message, {"role", "content", "tool_calls", "refusal"}, where, _A)
            blocks = _texts(message.get("content"), where, role)
            if message.get("refusal"):
                blocks.append({"type": "text", "text": message["refusal"]})
            blocks += [
                _tool_use(c, f"{where}tool_calls[{j}].")
                for j, c in enumerate(message.get("tool_calls") or ())
            ]
        elif role == "tool":
            check_keys(message, {"role", "content", "tool_call_id"}, where, _A)
            content = message.get("content")
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": content
                if isinstance(content, str)
                else _anthropic_blocks(content, where),
            }
            role, blocks = "user", [result]
        else:
            raise unsupported(f"A '{role}' message", _A)
        if out and out[-1]["role"] == role:
            out[-1]["content"] += blocks
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def _texts(content: Any, where: str, role: str) -> list[dict[str, Any]]:
    """The non-empty text blocks of a system or assistant message (Anthropic refuses empty
    ones); an image there has no Anthropic place."""
    blocks = _anthropic_blocks(content, where)
    if any(b["type"] != "text" for b in blocks):
        raise unsupported(f"An image in a '{role}' message", _A)
    return [b for b in blocks if b["text"]]


def _anthropic_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind in ("text", "refusal"):
            check_keys(part, {"type", kind}, f"{where}content[{j}].", _A)
            blocks.append({"type": "text", "text": part[kind]})
        elif kind == "image_url":
            check_keys(part, {"type", "image_url"}, f"{where}content[{j}].", _A)
            blocks.append(_anthropic_image(part["image_url"], f"{where}content[{j}]"))
        else:
            raise unsupported(f"A '{str(kind)[:32]}' content part", _A)
    return blocks


def _anthropic_image(image: dict[str, Any], where: str) -> dict[str, Any]:
    # ``detail`` is a resolution hint with no Anthropic counterpart; the image itself goes.
    url = image.get("url") if isinstance(image, dict) else None
    if isinstance(url, str) and url.startswith("data:"):
        head, _, data = url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if encoding == "base64" and data:
            return {
                "type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }
    elif isinstance(url, str) and url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise unsupported(f"The image in '{where}' (only base64 data URLs and http(s) URLs)", _A)


def _tool_use(call: dict[str, Any], where: str) -> dict[str, Any]:
    function = call.get("function") or {}
    if call.get("type", "function") != "function":
        raise unsupported(f"A '{call.get('type')}' tool call", _A)
    arguments = function.get("arguments") or "{}"
    try:
        arguments_value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        arguments_value = None
    if not isinstance(arguments_value, dict):
        raise unsupported(f"'{where}function.arguments' that are not a JSON object", _A)
    return {
        "type": "tool_use",
        "id": call.get("id"),
        "name": function.get("name"),
        "input": arguments_value,
    }


def _anthropic_tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise unsupported(f"A '{str(tool.get('type'))[:32]}' tool", _A)
    function = tool["function"]
    # ``strict`` asks OpenAI to enforce the schema; Anthropic follows it without the flag.
    check_keys(function, {"name", "description", "parameters", "strict"}, f"tools[{i}].", _A)
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description") is not None:
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return out


def _anthropic_tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None:
        out: dict[str, Any] = {"type": "auto"}
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise unsupported(f"tool_choice {str(choice)[:64]}", _A)
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    elif choice is None:
        return None
    return out
