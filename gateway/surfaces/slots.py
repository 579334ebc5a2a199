"""Text slots both wire formats share: tool schemas and JSON held in strings."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import orjson

from gateway import errors
from gateway.errors import GatewayError
from gateway.normalized import JsonText, SlotKind, TextSlot, json_leaves
from gateway.surfaces.fields import invalid

__all__ = ["json_string", "tool_slots"]


def _descriptions(schema: Any, role: str, out: list[TextSlot]) -> None:
    """Every ``description`` in a JSON schema (parameter descriptions, nested or not)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                if key == "description" and isinstance(child, str):
                    out.append(TextSlot(role, node, key, "tool_description"))
                elif isinstance(child, dict | list):
                    stack.append(child)
        elif isinstance(node, list):
            stack.extend(c for c in node if isinstance(c, dict | list))


def tool_slots(tool: dict[str, Any], schema_key: str, where: str, out: list[TextSlot]) -> None:
    """A tool definition's description and its parameters' descriptions."""
    description = tool.get("description")
    if isinstance(description, str):
        out.append(TextSlot("tool", tool, "description", "tool_description"))
    elif description is not None:
        raise invalid(f"'{where}.description' must be a string")
    _descriptions(tool.get(schema_key), "tool", out)


def json_string(
    holder: dict[str, Any],
    key: str,
    role: str,
    kind: SlotKind,
    texts: list[TextSlot],
    owners: list[JsonText],
    duplicates: Literal["refuse", "normalize"] = "refuse",
) -> None:
    """Slots for a string holding JSON: its strings, keys and numbers, or the whole string
    if it is not a JSON document.

    A document with a key twice reads differently to different parsers (ours keeps the last
    copy): a request's is refused (``boundary.ambiguous_json``); an answer's goes on as it
    was inspected, written again from the parsed value (``duplicates="normalize"``).
    """
    raw = holder.get(key)
    if not isinstance(raw, str):
        return
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    ambiguous = isinstance(value, dict | list) and _has_duplicates(raw)
    if ambiguous and duplicates == "refuse":
        raise GatewayError(errors.BOUNDARY_AMBIGUOUS_JSON)
    if isinstance(value, dict | list) and not _writable(raw, value):
        value = None  # deeper than the encoder writes: inspected as one text instead
    if isinstance(value, dict | list):
        owner = JsonText(holder, key, value)
        owner.changed = ambiguous  # normalized: written again from the value inspected
        owners.append(owner)
        json_leaves(value, role, kind, texts, owner)
    else:
        texts.append(TextSlot(role, holder, key, kind))


def _writable(raw: str, value: dict[str, Any] | list[Any]) -> bool:
    """Whether ``value`` can be written back after a slot in it changes: the parser reads
    1024 levels, the encoder writes 254. Only a string with that many brackets is tried."""
    if raw.count("[") + raw.count("{") < 254:
        return True
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


_KEY = re.compile(r'"\s*:')


class _Duplicate(Exception):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Duplicate
    return out


def _has_duplicates(raw: str) -> bool:
    """Whether an object in ``raw`` (valid JSON) names a key twice. Only documents with
    more than one key can; the common one-argument call skips the second parse."""
    if len(_KEY.findall(raw, 0, 4096)) < 2 and len(raw) < 4096:
        return False
    try:
        json.loads(raw, object_pairs_hook=_unique)
    except (_Duplicate, RecursionError):  # too deep to check is as ambiguous as a duplicate
        return True
    return False
