"""OpenAI Chat Completions requests: parsing into a NormalizedRequest, and the knobs steps
turn on the body (output ceiling, usage in streams, logprobs, no-store)."""

from __future__ import annotations

from typing import Any

from gateway.normalized import NormalizedRequest, SlotKind, TextSlot
from gateway.surfaces.fields import (
    OutputCeiling,
    invalid,
    optional_bool,
    optional_int,
    parse_object,
    require_list,
    require_str,
)
from gateway.surfaces.slots import json_string, tool_slots
from gateway.surfaces.total import NonText, every_leaf, nontext, unknown_block

__all__ = [
    "API",
    "NONTEXT",
    "ask_logprobs",
    "ask_no_store",
    "ask_usage_in_stream",
    "include_usage",
    "output_ceilings",
    "parse",
    "set_output_ceiling",
]

API = "openai_chat"

# Parts that carry no text the gateway can read, by the name the data policy knows them.
_MEDIA = {"image_url": "image", "input_audio": "audio", "file": "file"}
_KINDS: dict[str, SlotKind] = {
    "system": "system",
    "developer": "system",
    "tool": "tool_result",
    "function": "tool_result",
}
_ROUTING = "the gateway reads it to route; the upstream's own name replaces it"
_KNOB = "a sampling or output knob: a number or a constant, no text for the model"
_ID = "an id the provider issued, which pairs a call with its result"
# Everything in a chat request that is not text sent to a model; every other string, key
# and number is inspected (``every_leaf``). docs/data-boundary.md lists these with reasons.
NONTEXT = nontext(
    NonText("model", _ROUTING),
    NonText("messages.*.role", "the message's role: a constant the gateway checks"),
    NonText("messages.*.content.*.type", "the part's type: a constant the gateway checks"),
    NonText("messages.*.tool_calls.*.id", _ID),
    NonText("messages.*.tool_calls.*.type", "a constant ('function')"),
    NonText("messages.*.tool_call_id", _ID),
    NonText("messages.*.content.*[type=image_url].image_url.detail", _KNOB),
    NonText("messages.*.content.*[type=input_audio].input_audio", "audio: refused as unreadable"),
    NonText("messages.*.content.*[type=file].file", "a file: refused as unreadable"),
    NonText("tools.*.type", "a constant ('function')"),
    *(
        NonText(knob, _KNOB)
        for knob in (
            "max_tokens",
            "max_completion_tokens",
            "temperature",
            "top_p",
            "n",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "logprobs",
            "top_logprobs",
            "stream",
            "stream_options",
            "parallel_tool_calls",
            "store",
            "service_tier",
            "reasoning_effort",
            "verbosity",
            "modalities",
            "logit_bias.*",
            "response_format.type",
        )
    ),
)


def _content(message: dict[str, Any], i: int, kind: SlotKind, request: NormalizedRequest) -> None:
    role, content = message["role"], message.get("content")
    if isinstance(content, str):
        request.texts.append(TextSlot(role, message, "content", kind))
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise invalid(f"'messages[{i}].content[{j}]' must be a typed content part")
            ptype = part["type"]
            if ptype in ("text", "refusal"):
                if not isinstance(part.get(ptype), str):
                    raise invalid(f"'messages[{i}].content[{j}].{ptype}' must be a string")
                request.texts.append(TextSlot(role, part, ptype, kind))
            elif ptype in _MEDIA:
                request.media.append(_MEDIA[ptype])
            else:  # a part type this gateway does not know: its strings are inspected
                unknown_block(request, part, f"messages[{i}].content[{j}]")
    elif content is not None:
        raise invalid(f"'messages[{i}].content' must be a string or an array of parts")


def _tool_calls(message: dict[str, Any], i: int, request: NormalizedRequest) -> None:
    # Text in a shape the gateway does not read would leave uninspected: such a request is
    # refused here (the provider would refuse it too, after the text had left).
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise invalid(f"'messages[{i}].tool_calls' must be an array")
    functions = (
        [] if calls is None else [(f"tool_calls[{j}].function", c) for j, c in enumerate(calls)]
    )
    if message.get("function_call") is not None:  # the deprecated single-call form
        functions.append(("function_call", {"function": message["function_call"]}))
    for where, call in functions:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("arguments", ""), str):
            raise invalid(f"'messages[{i}].{where}' must be an object with string 'arguments'")
        json_string(
            function,
            "arguments",
            message["role"],
            "tool_arguments",
            request.texts,
            request.json_texts,
        )


def parse(raw: bytes) -> NormalizedRequest:
    body = parse_object(raw)
    model = require_str(body, "model")
    messages = require_list(body, "messages")
    legacy = optional_int(body, "max_tokens")  # both are checked: either may be forwarded
    max_tokens = optional_int(body, "max_completion_tokens") or legacy
    request = NormalizedRequest(
        api=API,
        body=body,
        model=model,
        stream=optional_bool(body, "stream"),
        max_tokens=max_tokens,
    )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise invalid(f"'messages[{i}]' must be an object with a string 'role'")
        _content(message, i, _KINDS.get(message["role"], "content"), request)
        _tool_calls(message, i, request)
    for key in ("tools", "functions"):
        tools = body.get(key)
        if tools is not None and not isinstance(tools, list):
            raise invalid(f"'{key}' must be an array")
        request.tools = request.tools or bool(tools)  # ``functions``: the older name
        for j, tool in enumerate(tools or ()):
            function = tool.get("function", tool) if isinstance(tool, dict) else None
            if not isinstance(function, dict):
                raise invalid(f"'{key}[{j}]' must be an object")
            tool_slots(function, "parameters", f"{key}[{j}]", request.texts)
    every_leaf(request, NONTEXT)
    return request


# Either field is taken (the newer one is written when neither is set).
_CEILING = OutputCeiling("max_completion_tokens", "max_tokens")
output_ceilings = _CEILING.asked
set_output_ceiling = _CEILING.lower


def include_usage(body: dict[str, Any]) -> bool:
    """Whether a stream request asks for the final usage chunk."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def ask_usage_in_stream(request: NormalizedRequest) -> bool:
    if not request.stream or include_usage(request.body):
        return False
    options = request.body.get("stream_options")
    request.body["stream_options"] = {
        **(options if isinstance(options, dict) else {}),
        "include_usage": True,
    }
    return True


def ask_logprobs(request: NormalizedRequest) -> bool:
    strip = request.body.get("logprobs") is not True
    request.body["logprobs"] = True
    return strip


def ask_no_store(request: NormalizedRequest) -> None:
    request.body["store"] = False
