"""Anthropic Messages requests: parsing into a NormalizedRequest, and the knobs steps turn
on the body (the output ceiling; usage, logprobs and no-store need none)."""

from __future__ import annotations

from typing import Any

from gateway.normalized import NormalizedRequest, SlotKind, TextSlot, json_leaves
from gateway.surfaces.fields import (
    OutputCeiling,
    invalid,
    optional_bool,
    optional_int,
    parse_object,
    require_list,
    require_str,
)
from gateway.surfaces.slots import tool_slots
from gateway.surfaces.total import NonText, every_leaf, nontext, unknown_block

__all__ = [
    "API",
    "NONTEXT",
    "ask_logprobs",
    "ask_no_store",
    "ask_usage_in_stream",
    "output_ceilings",
    "parse",
    "set_output_ceiling",
]

API = "anthropic_messages"

# Roles the Messages API accepts in ``messages`` (``system`` mid-conversation: Claude Code).
_ROLES = frozenset({"user", "assistant", "system"})
_ID = "an id the provider issued, which pairs a call with its result"
_KNOB = "a sampling or output knob: a number or a constant, no text for the model"
_CACHE = "a prompt-cache marker: constants, kept as sent"
_BLOCK = "messages.*.content.*"
_NESTED = "messages.*.content.*[type=tool_result].content.*"
# Everything in a Messages request that is not text sent to a model; every other string,
# key and number is inspected (``every_leaf``). docs/data-boundary.md lists these with reasons.
NONTEXT = nontext(
    NonText("model", "the gateway reads it to route; the upstream's own name replaces it"),
    NonText("messages.*.role", "the message's role: a constant the gateway checks"),
    NonText(f"{_BLOCK}.type", "the block's type: a constant the gateway checks"),
    NonText(f"{_NESTED}.type", "the block's type: a constant the gateway checks"),
    NonText("system.*.type", "the block's type: a constant the gateway checks"),
    NonText(f"{_BLOCK}[type=tool_use].id", _ID),
    NonText(f"{_BLOCK}[type=server_tool_use].id", _ID),
    NonText(f"{_BLOCK}[type=tool_result].tool_use_id", _ID),
    NonText(f"{_BLOCK}[type=thinking].signature", "the provider's signature of the block"),
    NonText(f"{_BLOCK}[type=redacted_thinking]", "encrypted by the provider, opaque to all"),
    NonText(f"{_BLOCK}.*.*.encrypted_content", "encrypted by the provider (search results)"),
    NonText(f"{_BLOCK}[type=image].source", "an image: data.images decides"),
    NonText(f"{_NESTED}[type=image].source", "an image: data.images decides"),
    NonText(f"{_BLOCK}[type=document].source.data", "a PDF's bytes: refused as unreadable"),
    NonText(f"{_BLOCK}.cache_control", _CACHE),
    NonText(f"{_NESTED}.cache_control", _CACHE),
    NonText("system.*.cache_control", _CACHE),
    NonText("tools.*.cache_control", _CACHE),
    NonText("tools.*.type", "the tool's type: a constant ('custom', a server tool's version)"),
    NonText("thinking", "the thinking budget: a constant and a number"),
    *(
        NonText(knob, _KNOB)
        for knob in ("max_tokens", "temperature", "top_p", "top_k", "stream", "service_tier")
    ),
)


def _blocks(
    role: str,
    holder: dict[str, Any],
    key: str,
    where: str,
    kind: SlotKind,
    request: NormalizedRequest,
) -> None:
    content = holder.get(key)
    if isinstance(content, str):
        request.texts.append(TextSlot(role, holder, key, kind))
        return
    if not isinstance(content, list):
        raise invalid(f"'{where}' must be a string or an array of content blocks")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid(f"'{where}[{j}]' must be a typed content block")
        btype = block["type"]
        if btype == "text":
            if not isinstance(block.get("text"), str):
                raise invalid(f"'{where}[{j}].text' must be a string")
            request.texts.append(TextSlot(role, block, "text", kind))
        elif btype == "tool_use":
            if not isinstance(block.get("input"), dict):
                raise invalid(f"'{where}[{j}].input' must be an object")
            json_leaves(block["input"], role, "tool_arguments", request.texts)
        elif btype == "tool_result":
            if block.get("content") is not None:
                _blocks(role, block, "content", f"{where}[{j}].content", "tool_result", request)
        elif btype == "thinking":
            if not isinstance(block.get("thinking"), str):
                raise invalid(f"'{where}[{j}].thinking' must be a string")
            # Signed: inspected, never changed (the provider refuses a changed block).
            request.texts.append(TextSlot(role, block, "thinking", "content", signed=True))
        elif btype == "document":
            _document(role, block, kind, request)
        elif btype == "image":
            request.media.append("image")
        elif btype != "redacted_thinking":  # its strings are inspected by ``every_leaf``
            unknown_block(request, block, f"{where}[{j}]")


def _document(role: str, block: dict[str, Any], kind: SlotKind, request: NormalizedRequest) -> None:
    """A plain-text document is a slot, a content document's blocks are inspected with the
    rest (title and context too); a PDF or a URL the gateway does not fetch is unreadable."""
    source = block.get("source")
    stype = source.get("type") if isinstance(source, dict) else None
    if _text_source(block):
        request.texts.append(TextSlot(role, block["source"], "data", kind))
    elif stype != "content":
        request.media.append("document")


def _text_source(block: dict[str, Any]) -> bool:
    source = block.get("source")
    return (
        isinstance(source, dict)
        and source.get("type") == "text"
        and isinstance(source.get("data"), str)
    )


def parse(raw: bytes) -> NormalizedRequest:
    body = parse_object(raw)
    model = require_str(body, "model")
    messages = require_list(body, "messages")
    max_tokens = optional_int(body, "max_tokens")
    if max_tokens is None:
        raise invalid("'max_tokens' is required")
    request = NormalizedRequest(
        api=API,
        body=body,
        model=model,
        stream=optional_bool(body, "stream"),
        max_tokens=max_tokens,
    )
    if body.get("system") is not None:
        _blocks("system", body, "system", "system", "system", request)
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if not isinstance(role, str) or role not in _ROLES:
            raise invalid(
                f"'messages[{i}]' must be an object with role 'user', 'assistant' or 'system'"
            )
        role = message["role"]
        kind: SlotKind = "system" if role == "system" else "content"
        _blocks(role, message, "content", f"messages[{i}].content", kind, request)
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise invalid("'tools' must be an array")
    request.tools = bool(tools)
    for j, tool in enumerate(tools or ()):
        if not isinstance(tool, dict):
            raise invalid(f"'tools[{j}]' must be an object")
        tool_slots(tool, "input_schema", f"tools[{j}]", request.texts)
    every_leaf(request, NONTEXT)
    return request


_CEILING = OutputCeiling("max_tokens")
output_ceilings = _CEILING.asked
set_output_ceiling = _CEILING.lower


def ask_usage_in_stream(request: NormalizedRequest) -> bool:
    """Every stream reports its usage (``message_start``, ``message_delta``)."""
    return False


def ask_logprobs(request: NormalizedRequest) -> bool:
    """The Messages API has no logprobs: the confidence check finds none and says so."""
    return False


def ask_no_store(request: NormalizedRequest) -> None:
    """No such field: Anthropic does not keep API traffic for reuse by default."""
