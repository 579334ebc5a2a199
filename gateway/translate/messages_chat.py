"""Anthropic Messages -> OpenAI Chat Completions: a messages request for a model served
through the OpenAI API (a fallback, or a GPT model asked for by an Anthropic client).

As in chat_messages.py, every field is carried over, mapped, or named with the reason it
carries no content; anything else is refused with ``translate.unsupported``. The input body
is never mutated.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.translate.refuse import check_keys, unsupported

__all__ = ["openai_request"]

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
        "output_format",
        "output_config",
    }
)
_CACHE_HINT = "cache_control"  # a prompt-caching hint: no content, no OpenAI counterpart
_O = "OpenAI Chat Completions"


def openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic messages request as an OpenAI chat completion request; a stream asks for
    usage so the translated ``message_delta`` carries real token counts."""
    check_keys(body, _ANTHROPIC_MAPPED, "", _O)
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
        check_keys(message, {"role", "content"}, f"messages[{i}].", _O)
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
        check_keys(metadata, {"user_id"}, "metadata.", _O)
        if metadata.get("user_id") is not None:
            out["user"] = metadata["user_id"]
    if body.get("tools"):
        out["tools"] = [_openai_tool(t, i) for i, t in enumerate(body["tools"])]
        _openai_tool_choice(body.get("tool_choice"), out)
    fmt = _response_format(body)
    if fmt is not None:
        out["response_format"] = fmt
    return out


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """Anthropic's structured outputs (``output_config.format``, or the beta's
    ``output_format``) as OpenAI's: a strict JSON-schema ``response_format``, since
    Anthropic's also guarantees the schema (a schema OpenAI's strict mode cannot take comes
    back as OpenAI's 400)."""
    fmt, where = body.get("output_format"), "output_format"
    config = body.get("output_config")
    if config is not None:
        if not isinstance(config, dict) or fmt is not None:
            raise unsupported("'output_config'", _O)
        check_keys(config, {"format"}, "output_config.", _O)  # ``effort``: no counterpart
        fmt, where = config.get("format"), "output_config.format"
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise unsupported(f"'{where}' that is not a JSON schema", _O)
    check_keys(fmt, {"type", "schema"}, f"{where}.", _O)
    spec = {"name": "answer", "schema": fmt.get("schema"), "strict": True}
    return {"type": "json_schema", "json_schema": spec}


def _openai_text(blocks: list[Any], where: str, images: bool) -> str | list[dict[str, Any]]:
    """Text (and image) blocks as OpenAI content: one string for one text, else parts."""
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text":
            check_keys(block, {"type", "text", _CACHE_HINT}, f"{where}[{j}].", _O)
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image" and images:
            check_keys(block, {"type", "source", _CACHE_HINT}, f"{where}[{j}].", _O)
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
        check_keys(
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
            check_keys(block, {"type", "id", "name", "input", _CACHE_HINT}, f"{where}[{j}].", _O)
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
    check_keys(
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
