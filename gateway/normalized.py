"""The request as every step sees it, whatever wire format the client spoke.

The client's JSON is parsed once and kept as it came: steps read the few fields they need and
rewrite text through ``TextSlot``s, so every other field is forwarded untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

__all__ = [
    "Api",
    "JsonText",
    "NormalizedRequest",
    "SlotForm",
    "SlotKind",
    "TextSlot",
    "json_leaves",
    "number_text",
]

# A wire API's name, as its surface registered it (gateway.surfaces.SURFACES).
Api = str
# Where a text sits: what the audit trail and tests name when they say "in every field kind".
# ``field``: a string, key or number of a field no surface models (found by ``every_leaf``).
SlotKind = Literal[
    "content", "system", "tool_description", "tool_arguments", "tool_result", "field"
]
# What of a JSON member a slot reads: its string value, its object key, or its number.
SlotForm = Literal["string", "key", "number"]


@dataclass(slots=True)
class JsonText:
    """A string field holding JSON (OpenAI tool-call ``arguments``): its string leaves are
    slots, and it is re-serialized only if one of them changed."""

    holder: dict[str, Any]
    key: str
    value: Any
    changed: bool = False

    def commit(self) -> None:
        if self.changed:
            self.holder[self.key] = orjson.dumps(self.value).decode()
            self.changed = False


def number_text(value: int | float) -> str:
    """A JSON number as the detector reads it: a card or a phone number can be a number."""
    return str(value) if isinstance(value, int) else repr(value)


@dataclass(slots=True)
class TextSlot:
    """One text-bearing place in the body (a message content, a text part, a system prompt,
    an object key or a number of a document nobody models).

    A ``key`` slot renames the key in place (the object keeps its order); a ``number`` slot
    that is rewritten becomes a string. Invariant: a key's slot comes after the slot of its
    value in a slot list, so the value is rewritten before its key changes.
    """

    role: str
    holder: dict[str, Any] | list[Any]
    key: str | int
    kind: SlotKind = "content"
    owner: JsonText | None = None
    form: SlotForm = "string"
    # Signed by the provider (a thinking block): inspected, never changed; a finding that
    # would change it refuses the request instead.
    signed: bool = False

    @property
    def text(self) -> str:
        if self.form == "key":
            assert isinstance(self.key, str)
            return self.key
        value = self.holder[self.key]  # type: ignore[index]
        if self.form == "number":
            return number_text(value)
        assert isinstance(value, str)
        return value

    def replace(self, text: str) -> None:
        if self.form == "key":
            assert isinstance(self.holder, dict)
            assert isinstance(self.key, str)
            _rename(self.holder, self.key, text)
            self.key = text
        else:
            self.holder[self.key] = text  # type: ignore[index]
        if self.owner is not None:
            self.owner.changed = True


def _rename(holder: dict[str, Any], old: str, new: str) -> None:
    """``old`` renamed ``new`` in place, order kept; a clash (two keys redacted alike) keeps
    both, the later one suffixed."""
    while new in holder and new != old:
        new += "_"
    items = [(new if k == old else k, v) for k, v in holder.items()]
    holder.clear()
    holder.update(items)


def json_leaves(
    value: Any, role: str, kind: SlotKind, out: list[TextSlot], owner: JsonText | None = None
) -> None:
    """A slot for every string leaf, object key and number of a JSON document (tool-call
    arguments, ``tool_use.input``): a card can be a number, and a key is text the model
    reads. Keys come after all values (see ``TextSlot``)."""
    keys: list[TextSlot] = []
    stack = [value]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, str):
                out.append(TextSlot(role, node, key, kind, owner))
            elif isinstance(child, dict | list):
                stack.append(child)
            elif isinstance(child, int | float) and not isinstance(child, bool):
                out.append(TextSlot(role, node, key, kind, owner, "number"))
            if isinstance(key, str):
                keys.append(TextSlot(role, node, key, kind, owner, "key"))
    out.extend(keys)


@dataclass(slots=True)
class NormalizedRequest:
    """``api`` names the surface that parsed it: ``gateway.surfaces.surface_of`` finds it."""

    api: Api
    body: dict[str, Any]
    model: str
    stream: bool
    max_tokens: int | None
    texts: list[TextSlot] = field(default_factory=list)
    # Parts the gateway cannot read as text: "image", or "file" / "audio" / "document".
    media: list[str] = field(default_factory=list)
    json_texts: list[JsonText] = field(default_factory=list)
    # What the gateway cannot read as text (token ids, base64 of an unknown type): the data
    # policy's ``on_uninspectable`` decides. ``complete``: ``every_leaf`` has run.
    uninspectable: list[str] = field(default_factory=list)
    complete: bool = False
    tools: bool = False  # the request declares tools the model may call
    # Fields asking the provider for state it kept (``previous_response_id``): refused when
    # the workflow forbids provider storage (``retention.upstream_store: false``).
    provider_state: list[str] = field(default_factory=list)
    # The client's headers, for the few that change the wire format (anthropic-version).
    headers: Mapping[str, str] = field(default_factory=dict)

    def commit(self) -> None:
        """Write changed JSON-in-a-string fields back after their slots were rewritten."""
        for text in self.json_texts:
            text.commit()

    def last_user_text(self) -> str:
        """The text of the last user turn, parts joined; empty when there is none."""
        parts: list[str] = []
        for slot in reversed(self.texts):
            if slot.role != "user" or slot.kind != "content":
                if parts:
                    break
                continue
            parts.append(slot.text)
        return "\n".join(reversed(parts))
