"""Request bodies from one API into the other, for a model served through the other API.

Every field is either carried over, mapped, or named in an ignore list with the reason it
carries no content; anything else is refused with ``translate.unsupported`` so no content is
ever dropped unnoticed. The input body is never mutated: a retry translates it again.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway import errors
from gateway.errors import GatewayError

__all__ = ["DEFAULT_MAX_TOKENS", "anthropic_request", "openai_request", "unsupported"]

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
    "response_format": ({"type": "text"},),
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
    }
)
_ANTHROPIC_MAPPED = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "metadata",
    }
)
_CACHE_HINT = "cache_control"  # a prompt-caching hint: no content, no OpenAI counterpart


def unsupported(what: str, target: str) -> GatewayError:
    return GatewayError(
        errors.TRANSLATE_UNSUPPORTED,
        f"{what} cannot be sent to a model served through the {target} API.",
    )


def _check_keys(
    obj: dict[str, Any], allowed: frozenset[str] | set[str], where: str, target: str
) -> None:
    for key, value in obj.items():
        if key not in allowed and value is not None:
            raise unsupported(f"'{where}{key}'", target)


# OpenAI chat -> Anthropic messages

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
            _check_keys(message, {"role", "content"}, where, _A)
            system += _texts(message.get("content"), where, role)
            continue
        if role == "user":
            _check_keys(message, {"role", "content"}, where, _A)
            blocks = _anthropic_blocks(message.get("content"), where)
        elif role == "assistant":
            _check_keys(message, {"role", "content", "tool_calls", "refusal"}, where, _A)
            blocks = _texts(message.get("content"), where, role)
            if message.get("refusal"):
                blocks.append({"type": "text", "text": message["refusal"]})
            blocks += [
                _tool_use(c, f"{where}tool_calls[{j}].")
                for j, c in enumerate(message.get("tool_calls") or ())
            ]
        elif role == "tool":
            _check_keys(message, {"role", "content", "tool_call_id"}, where, _A)
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
            _check_keys(part, {"type", kind}, f"{where}content[{j}].", _A)
            blocks.append({"type": "text", "text": part[kind]})
        elif kind == "image_url":
            _check_keys(part, {"type", "image_url"}, f"{where}content[{j}].", _A)
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
    _check_keys(function, {"name", "description", "parameters", "strict"}, f"tools[{i}].", _A)
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


# Anthropic messages -> OpenAI chat

_O = "OpenAI Chat Completions"


def openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic messages request as an OpenAI chat completion request; a stream asks for
    usage so the translated ``message_delta`` carries real token counts."""
    _check_keys(body, _ANTHROPIC_MAPPED, "", _O)
    if body.get("thinking") is not None:
        raise unsupported("'thinking'", _O)
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, str):
        messages.append({"role": "system", "content": system})
    elif system:
        messages.append({"role": "system", "content": _openai_text(system, "system", False)})
    if body["messages"] and body["messages"][-1].get("role") == "assistant":
        # Anthropic continues a last assistant turn (a prefill); OpenAI would answer it anew.
        raise unsupported("A last assistant message (a prefill)", _O)
    for i, message in enumerate(body["messages"]):
        _check_keys(message, {"role", "content"}, f"messages[{i}].", _O)
        if message["role"] == "user":
            messages += _openai_user(message["content"], f"messages[{i}].content")
        elif message["role"] == "system":  # mid-conversation (Claude Code sends these)
            content, where = message["content"], f"messages[{i}].content"
            text = content if isinstance(content, str) else _openai_text(content, where, False)
            messages.append({"role": "system", "content": text})
        else:
            messages.append(_openai_assistant(message["content"], f"messages[{i}].content"))
    out: dict[str, Any] = {
        "model": body["model"],
        "messages": messages,
        "max_completion_tokens": body["max_tokens"],
    }
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    metadata = body.get("metadata")
    if metadata:
        _check_keys(metadata, {"user_id"}, "metadata.", _O)
        if metadata.get("user_id") is not None:
            out["user"] = metadata["user_id"]
    if body.get("tools"):
        out["tools"] = [_openai_tool(t, i) for i, t in enumerate(body["tools"])]
        _openai_tool_choice(body.get("tool_choice"), out)
    return out


def _openai_text(blocks: list[Any], where: str, images: bool) -> str | list[dict[str, Any]]:
    """Text (and image) blocks as OpenAI content: one string for one text, else parts."""
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text":
            _check_keys(block, {"type", "text", _CACHE_HINT}, f"{where}[{j}].", _O)
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image" and images:
            _check_keys(block, {"type", "source", _CACHE_HINT}, f"{where}[{j}].", _O)
            parts.append(_openai_image(block["source"], f"{where}[{j}]"))
        else:
            raise unsupported(f"A '{str(kind)[:32]}' block in '{where}'", _O)
    if len(parts) == 1 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text
    return parts


def _openai_image(source: dict[str, Any], where: str) -> dict[str, Any]:
    if source.get("type") == "base64":
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif source.get("type") == "url":
        url = source["url"]
    else:
        raise unsupported(f"The image source in '{where}'", _O)
    return {"type": "image_url", "image_url": {"url": url}}


def _openai_user(content: Any, where: str) -> list[dict[str, Any]]:
    """Tool results become ``tool`` messages, other blocks user messages, in their order."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict[str, Any]] = []
    pending: list[Any] = []
    for j, block in enumerate(content):
        if block.get("type") != "tool_result":
            pending.append(block)
            continue
        if pending:
            out.append({"role": "user", "content": _openai_text(pending, where, True)})
            pending = []
        # ``is_error`` has no OpenAI counterpart; the result's text says what went wrong.
        _check_keys(
            block, {"type", "tool_use_id", "content", "is_error", _CACHE_HINT}, f"{where}[{j}].", _O
        )
        result = block.get("content")
        if result is None:
            result = ""
        elif not isinstance(result, str):
            result = _openai_text(result, f"{where}[{j}].content", False)
        out.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": result})
    if pending:
        out.append({"role": "user", "content": _openai_text(pending, where, True)})
    return out


def _openai_assistant(content: Any, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        if block.get("type") == "tool_use":
            _check_keys(block, {"type", "id", "name", "input", _CACHE_HINT}, f"{where}[{j}].", _O)
            arguments = orjson.dumps(block["input"]).decode()
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": arguments},
                }
            )
        else:
            texts.append(block)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": _openai_text(texts, where, False) if texts else None,
    }
    if calls:
        message["tool_calls"] = calls
    return message


def _openai_tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    if tool.get("type") not in (None, "custom"):  # server tools (web search, ...) run at Anthropic
        raise unsupported(f"A '{str(tool.get('type'))[:32]}' tool", _O)
    _check_keys(
        tool, {"type", "name", "description", "input_schema", _CACHE_HINT}, f"tools[{i}].", _O
    )
    function: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description") is not None:
        function["description"] = tool["description"]
    function["parameters"] = tool["input_schema"]
    return {"type": "function", "function": function}


def _openai_tool_choice(choice: Any, out: dict[str, Any]) -> None:
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise unsupported(f"tool_choice {str(choice)[:64]}", _O)
    if kind != "none" and choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
