"""OpenAI Responses requests: parsing into a NormalizedRequest (every text slot named, every
other string leaf handed to ``json_leaves``), and the knobs steps turn on the body (the output
ceiling, no-store; usage is always in the stream, logprobs are not read here)."""

from __future__ import annotations

from typing import Any

from gateway import errors
from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest, SlotKind, TextSlot, json_leaves
from gateway.surfaces.fields import (
    OutputCeiling,
    invalid,
    optional_bool,
    optional_int,
    parse_object,
    require_str,
)
from gateway.surfaces.slots import json_string, tool_slots
from gateway.surfaces.total import NonText, every_leaf, nontext

__all__ = [
    "API",
    "ask_logprobs",
    "ask_no_store",
    "ask_usage_in_stream",
    "output_ceilings",
    "parse",
    "set_output_ceiling",
]

API = "openai_responses"
UNKNOWN = "unknown"  # the role of slots in fields the gateway does not model

# Top-level fields that are not text sent to a model, each with why: the model id and the
# enum/number knobs steer the call; ``previous_response_id`` and ``conversation`` are ids the
# provider issued (refused without provider storage); ``include`` names output fields.
_NOT_TEXT = frozenset(
    {
        "model", "stream", "store", "max_output_tokens", "temperature", "top_p", "top_logprobs",
        "tool_choice", "parallel_tool_calls", "reasoning", "include", "truncation",
        "service_tier", "background", "max_tool_calls", "previous_response_id",
        "conversation", "prompt_cache_key", "stream_options",
    }
)  # fmt: skip
# The same, as total inspection's list (surfaces/total.py), with the constants and ids inside
# the items: what is not listed here and no slot names is inspected (numbers and keys too).
NONTEXT = nontext(
    *(NonText(name, "a routing name, knob, or id the provider issued") for name in _NOT_TEXT),
    NonText("input.*.role", "the item's role: a constant the gateway checks"),
    NonText("input.*.type", "the item's type: a constant the gateway checks"),
    NonText("input.*.status", "a constant the provider set"),
    NonText("input.*.id", "an id the provider issued"),
    NonText("input.*.call_id", "an id the provider issued, which pairs a call with its output"),
    NonText("input.*.content.*.type", "the part's type: a constant"),
    NonText("input.*[type=reasoning].encrypted_content", "reasoning only the provider can read"),
    NonText("tools.*.type", "the tool's type: a constant"),
    NonText("tools.*.strict", "a knob"),
    NonText("text.format.type", "a constant"),
    NonText("text.format.strict", "a knob"),
    NonText("text.verbosity", "a knob"),
)
# Fields read below as text slots.
_TEXT = frozenset({"input", "instructions", "tools", "text"})
# Content parts that carry no text the gateway can read, by the name the data policy knows.
_MEDIA = {"input_image": "image", "input_file": "file", "input_audio": "audio"}
_KINDS: dict[str, SlotKind] = {"system": "system", "developer": "system"}
# Items that only the provider can read (encrypted reasoning, its own signature): forwarded
# exactly as the model wrote them, like Anthropic's signed thinking blocks.
_UNTOUCHED = frozenset({"reasoning"})


def _parts(
    item: dict[str, Any], where: str, role: str, kind: SlotKind, r: NormalizedRequest
) -> None:
    content = item.get("content")
    if isinstance(content, str):
        r.texts.append(TextSlot(role, item, "content", kind))
        return
    if not isinstance(content, list):
        raise invalid(f"'{where}.content' must be a string or an array of parts")
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise invalid(f"'{where}.content[{j}]' must be a typed content part")
        ptype = part["type"]
        key = "refusal" if ptype == "refusal" else "text"
        if ptype in ("input_text", "output_text", "text", "refusal"):
            if not isinstance(part.get(key), str):
                raise invalid(f"'{where}.content[{j}].{key}' must be a string")
            r.texts.append(TextSlot(role, part, key, kind))
            for other, value in part.items():  # annotations and the like
                if other not in (key, "type") and isinstance(value, dict | list):
                    json_leaves(value, role, kind, r.texts)
        else:
            r.media.append(_MEDIA.get(ptype, f"unknown part '{ptype[:32]}'"))


def _item(item: Any, i: int, r: NormalizedRequest) -> None:
    where = f"input[{i}]"
    if not isinstance(item, dict):
        raise invalid(f"'{where}' must be an object")
    itype = item.get("type", "message")
    if itype == "message":
        role = item.get("role")
        if not isinstance(role, str):
            raise invalid(f"'{where}' must be a message with a string 'role'")
        _parts(item, where, role, _KINDS.get(role, "content"), r)
    elif itype == "function_call":
        if not isinstance(item.get("arguments"), str) or not isinstance(item.get("name"), str):
            raise invalid(f"'{where}' must have string 'name' and 'arguments'")
        json_string(item, "arguments", "assistant", "tool_arguments", r.texts, r.json_texts)
    elif itype == "function_call_output":
        output = item.get("output")
        if isinstance(output, str):
            json_string(item, "output", "tool", "tool_result", r.texts, r.json_texts)
        elif isinstance(output, list):
            _parts({"content": output}, f"{where}.output", "tool", "tool_result", r)
        else:
            raise invalid(f"'{where}.output' must be a string or an array of parts")
    elif itype == "item_reference":
        r.provider_state.append(f"{where} (item_reference)")
    elif itype not in _UNTOUCHED:  # built-in tool calls and outputs: every string leaf
        json_leaves(item, "tool", "tool_result", r.texts)


def parse(raw: bytes) -> NormalizedRequest:
    body = parse_object(raw)
    model = require_str(body, "model")
    request = NormalizedRequest(
        api=API,
        body=body,
        model=model,
        stream=optional_bool(body, "stream"),
        max_tokens=optional_int(body, "max_output_tokens"),
    )
    optional_bool(body, "store")
    previous = body.get("previous_response_id")
    if previous is not None:
        if not isinstance(previous, str):
            raise invalid("'previous_response_id' must be a string")
        request.provider_state.append("previous_response_id")
    if body.get("conversation") is not None:
        request.provider_state.append("conversation")
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        request.texts.append(TextSlot("system", body, "instructions", "system"))
    elif instructions is not None:
        raise invalid("'instructions' must be a string")
    items = body.get("input")
    if isinstance(items, str):
        request.texts.append(TextSlot("user", body, "input", "content"))
    elif isinstance(items, list):
        for i, item in enumerate(items):
            _item(item, i, request)
    elif items is not None or not request.provider_state:
        raise invalid("'input' must be a string or an array of items")
    _tools(body, request)
    text = body.get("text")
    if text is not None:
        if not isinstance(text, dict):
            raise invalid("'text' must be an object")
        json_leaves(text, "system", "tool_description", request.texts)  # the schema's strings
    for key, value in body.items():  # fields the gateway does not model: every string leaf
        if key in _TEXT or key in _NOT_TEXT:
            continue
        if isinstance(value, str):
            request.texts.append(TextSlot(UNKNOWN, body, key, "content"))
        elif isinstance(value, dict | list):
            json_leaves(value, UNKNOWN, "content", request.texts)
    every_leaf(request, NONTEXT)  # keys, numbers and whatever the walks above did not name
    return request


def _tools(body: dict[str, Any], request: NormalizedRequest) -> None:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise invalid("'tools' must be an array")
    request.tools = bool(tools)
    for j, tool in enumerate(tools or ()):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise invalid(f"'tools[{j}]' must be an object with a string 'type'")
        if tool["type"] == "function":
            if not isinstance(tool.get("name"), str):
                raise invalid(f"'tools[{j}].name' must be a string")
            tool_slots(tool, "parameters", f"tools[{j}]", request.texts)
        else:  # built-in tools (web search, MCP, ...): allowed with ``access.allow_tools``
            json_leaves(tool, "tool", "tool_description", request.texts)


_CEILING = OutputCeiling("max_output_tokens")
output_ceilings = _CEILING.asked
set_output_ceiling = _CEILING.lower


def ask_usage_in_stream(request: NormalizedRequest) -> bool:
    """Every stream ends with ``response.completed``, which carries the usage."""
    return False


def ask_logprobs(request: NormalizedRequest) -> bool:
    """Logprobs are not read from this API: the confidence check finds none and says so."""
    return False


def ask_no_store(request: NormalizedRequest) -> None:
    """``store: false``; a request that asks for state the provider kept is refused, since
    with storage forbidden there is none to use (``retention.provider_state``)."""
    if request.provider_state:
        raise GatewayError(
            errors.RETENTION_PROVIDER_STATE,
            f"This workflow forbids provider storage, so '{request.provider_state[0]}' cannot"
            " be used: send the whole conversation in 'input' instead (the earlier items,"
            " including the model's output items, then the new message), with 'store': false.",
        )
    request.body["store"] = False
