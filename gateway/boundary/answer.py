"""A complete answer inspected for its caller: output findings handled, tokens restored."""

from __future__ import annotations

from typing import Any

import orjson

from gateway import errors
from gateway.boundary.step import Inspection
from gateway.errors import GatewayError
from gateway.normalized import Api, JsonText, TextSlot, json_leaves
from gateway.surfaces.slots import json_string

__all__ = ["inspect_answer"]

# Anthropic blocks a signature protects, relayed as the model wrote them.
_SIGNED = frozenset({"thinking", "redacted_thinking"})


def _shape_error(what: str) -> GatewayError:
    return GatewayError(errors.BOUNDARY_ANSWER_SHAPE, detail=what)


def _openai_slots(data: Any, texts: list[TextSlot], owners: list[JsonText]) -> None:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list):
        raise _shape_error("no choices")
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise _shape_error("a choice without a message")
        if message.get("audio") is not None:  # a transcript cannot be changed with its audio
            raise _shape_error("an audio answer")
        for key in ("content", "refusal", "reasoning_content", "reasoning"):
            if isinstance(message.get(key), str):
                texts.append(TextSlot("assistant", message, key))
        calls = message.get("tool_calls")
        functions = [c.get("function") for c in calls if isinstance(c, dict)] if calls else []
        functions.append(message.get("function_call"))  # the deprecated single-call form
        for function in functions:
            if isinstance(function, dict):
                json_string(function, "arguments", "assistant", "tool_arguments", texts, owners)


def _anthropic_slots(data: Any, texts: list[TextSlot]) -> None:
    content = data.get("content") if isinstance(data, dict) else None
    if not isinstance(content, list):
        raise _shape_error("no content")
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(TextSlot("assistant", block, "text"))
        elif kind == "tool_use" and isinstance(block.get("input"), dict):
            json_leaves(block["input"], "assistant", "tool_arguments", texts)
        elif kind not in _SIGNED:
            raise _shape_error(f"content block {str(kind)[:32]}")


async def inspect_answer(inspection: Inspection, api: Api, body: bytes) -> bytes:
    """``body`` as the caller may see it; raises GatewayError for a blocked entity."""
    data = orjson.loads(body)  # the upstream client checked it is JSON
    texts: list[TextSlot] = []
    owners: list[JsonText] = []
    if api == "openai_chat":
        _openai_slots(data, texts, owners)
    else:
        _anthropic_slots(data, texts)
    originals = [slot.text for slot in texts]
    found = await inspection.find(originals) if inspection.rules.source.scan_output else None
    rewritten = [
        inspection.answer_text(text, found[i], 0, len(text)) if found and found[i] else text
        for i, text in enumerate(originals)
    ]
    inspection.check_answer()
    inspection.finish_answer()
    changed = False
    for slot, old, new in zip(texts, originals, rewritten, strict=True):
        new = await inspection.restore(new)
        if new != old:
            slot.replace(new)
            changed = True
    if not changed:
        return body
    for owner in owners:
        owner.commit()
    return orjson.dumps(data)
