"""Total inspection: every string, object key and number of a request body is a text slot,
unless its surface lists it as non-text (with the reason), deny by default.

A surface's parser names the slots it models (message content, tool descriptions, ...) and
then calls ``every_leaf``: whatever else the client sent (unknown top-level fields,
``metadata``, schema ``enum``/``title``/property names, ``stop``, ``user``, keys, numbers)
becomes a ``field`` slot. What cannot be read as text (base64 of a type that is not an image,
a long run of integers such as token ids, a block with no text to find) is noted in
``request.uninspectable``; the data policy's ``on_uninspectable`` decides (default block).

A path is dotted: ``messages.*.role``; ``*`` is any key or index, ``*[type=image]`` any whose
value is an object of that ``type``. A listed path covers its whole value (the key naming it
is still inspected unless it is a wire-format field name, ``FIELD_NAMES``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.normalized import JsonText, NormalizedRequest, TextSlot
from gateway.surfaces.base import Answer, Channels, shape_error

__all__ = [
    "CONSTANTS",
    "FIELD_NAMES",
    "NonText",
    "NonTextPaths",
    "answer_leaves",
    "every_leaf",
    "inspect_leaves",
    "nontext",
    "prompt_order",
    "unknown_block",
]

# Object keys that are the wire formats' own field names: constants, not client data.
FIELD_NAMES = frozenset(
    """model messages role content type text name tools tool_choice function functions
    parameters description arguments tool_calls tool_call_id id system max_tokens
    max_completion_tokens temperature top_p top_k n stream stream_options include_usage stop
    stop_sequences user metadata user_id seed logprobs top_logprobs logit_bias
    presence_penalty frequency_penalty response_format json_schema schema strict
    parallel_tool_calls store service_tier reasoning_effort modalities prediction audio
    image_url url detail input_audio data format file file_id file_data filename refusal
    input_schema tool_use tool_result tool_use_id input is_error source media_type
    cache_control ttl thinking budget_tokens signature redacted_thinking document title
    context citations enabled properties items required enum const default examples
    additionalProperties anyOf oneOf allOf not minimum maximum minLength maxLength pattern
    minItems maxItems uniqueItems $ref $defs definitions nullable additional_properties
    mcp_servers authorization_token tool_configuration allowed_tools container
    disable_parallel_tool_use web_search_options verbosity choices index message finish_reason
    usage prompt_tokens completion_tokens total_tokens object created system_fingerprint
    annotations url_citation start_index end_index stop_reason stop_sequence input_tokens
    output_tokens cache_creation_input_tokens cache_read_input_tokens delta error code param
    prompt_tokens_details completion_tokens_details cached_tokens reasoning_tokens
    audio_tokens accepted_prediction_tokens rejected_prediction_tokens server_tool_use
    web_search_requests cache_creation ephemeral_5m_input_tokens ephemeral_1h_input_tokens
    cited_text document_index document_title start_char_index end_char_index
    start_page_number end_page_number start_block_index end_block_index partial_json
    content_block instructions max_output_tokens previous_response_id conversation include
    truncation background max_tool_calls prompt_cache_key safety_identifier call_id output
    status input_text output_text input_image input_file encrypted_content summary
    reasoning dimensions encoding_format output_format output_config""".split()  # noqa: SIM905
)

# String values that are the wire formats' and JSON Schema's constants (types, roles, tool
# choices): nobody's data, however often a large tool schema repeats them.
CONSTANTS = frozenset(
    """string object integer number boolean array null function auto none required any
    text user assistant system tool developer json_schema json_object image_url ephemeral
    enabled disabled""".split()  # noqa: SIM905 - a word list reads better
)

_FILTER = re.compile(r"^\*\[type=([A-Za-z0-9_.-]+)\]$")
# Base64 longer than this, outside a listed path, is data the detector cannot read.
_BASE64_MIN = 256
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?[^,]*;base64,", re.ASCII)
# An array of this many integers or more is token ids (or bytes): not text to inspect.
# (A tool schema's ``enum`` of numbers is shorter; an embeddings surface checks its own.)
_INT_RUN = 32


@dataclass(frozen=True, slots=True)
class NonText:
    """A path whose value is not text sent to a model, and why (docs/data-boundary.md)."""

    path: str
    reason: str


@dataclass(slots=True)
class _Node:
    """Where a walk may be in a surface's paths: the segments that go on from here (a key,
    ``*``, ``*[type=T]`` by T) and whether a listed path ends here (its value is not text)."""

    named: dict[str | int, _Node] = field(default_factory=dict)  # an index matches none
    star: _Node | None = None
    typed: dict[str, _Node] = field(default_factory=dict)
    ends: bool = False
    stops: frozenset[str | int] = frozenset()  # the named keys whose listed path ends here


@dataclass(frozen=True, slots=True)
class NonTextPaths:
    """A surface's non-text paths, compiled once into a tree of their segments: a walk
    steps from a set of nodes to the next with a look-up or two per key, not a pass over
    every path."""

    entries: tuple[NonText, ...]
    root: _Node


def nontext(*entries: NonText) -> NonTextPaths:
    """The one list of a surface's non-text paths."""
    root = _Node()
    for entry in entries:
        node = root
        for part in entry.path.split("."):
            match = _FILTER.match(part)
            if match is None and "[" in part:
                raise ValueError(f"bad segment {part!r} in non-text path {entry.path!r}")
            if match is not None:
                node = node.typed.setdefault(match.group(1), _Node())
            elif part == "*":
                node.star = node = node.star or _Node()
            else:
                node = node.named.setdefault(part, _Node())
        node.ends = True
    nodes = [root]
    while nodes:
        node = nodes.pop()
        node.stops = frozenset(k for k, child in node.named.items() if child.ends)
        nodes.extend([*node.named.values(), *node.typed.values(), *filter(None, [node.star])])
    return NonTextPaths(entries, root)


State = list[_Node]  # the nodes the walk is at: a key may match a name and ``*`` both
_NO_STOPS: frozenset[str | int] = frozenset()


def _advance(states: State, key: str | int, value: Any) -> State | None:
    """The states after stepping into ``key``; None when a listed path ends there."""
    out: State = []
    for node in states:
        if (child := node.named.get(key)) is not None:
            if child.ends:
                return None
            out.append(child)
        if (child := node.star) is not None:
            if child.ends:
                return None
            out.append(child)
        if node.typed and isinstance(value, dict):
            kind = value.get("type")
            if isinstance(kind, str) and (child := node.typed.get(kind)) is not None:
                if child.ends:
                    return None
                out.append(child)
    return out


class _Walk:
    def __init__(
        self,
        texts: list[TextSlot],
        owners: list[JsonText],
        role: str,
        uninspectable: list[str],
        media: list[str],
    ) -> None:
        self.role = role
        self.uninspectable = uninspectable
        self.media = media
        self.covered: set[tuple[int, str | int, str]] = set()
        for slot in texts:
            self.covered.add((id(slot.holder), slot.key, slot.form))
        for owner in owners:
            self.covered.add((id(owner.holder), owner.key, "string"))
        self.holders = {c[0] for c in self.covered}  # most objects hold no slot: one test
        self.values: list[TextSlot] = []
        self.keys: list[TextSlot] = []

    def node(self, root: dict[str, Any] | list[Any], states: State) -> None:
        """Walks ``root`` without recursing (a body may nest as deep as the parser allows)."""
        stack: list[tuple[dict[str, Any] | list[Any], State]] = [(root, states)]
        while stack:
            self._members(*stack.pop(), stack)

    def _members(
        self,
        node: dict[str, Any] | list[Any],
        states: State,
        stack: list[tuple[dict[str, Any] | list[Any], State]],
    ) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        if isinstance(node, list) and len(node) >= _INT_RUN and all(_is_int(v) for v in node):
            self.uninspectable.append("an array of integers (token ids?)")
            return
        ident = id(node)
        held = ident in self.holders
        role, values, keys = self.role, self.values, self.keys
        # Keys a listed path ends at need no step (most of an answer's: id, usage, ...).
        # One state (most nodes) with no ``*[type=T]`` below it: stepped into inline, which
        # is ``_advance`` without its call and its list when a named key is the only match.
        one = states[0] if len(states) == 1 and not states[0].typed else None
        stops = one.stops if one is not None else _NO_STOPS
        for key, value in items:
            named = key.__class__ is str and key not in FIELD_NAMES
            if named and not (held and (ident, key, "key") in self.covered):
                keys.append(TextSlot(role, node, key, "field", None, "key"))
            if key in stops:
                continue
            if one is None:
                after = _advance(states, key, value) if states else states
                if after is None:
                    continue
            else:
                child, star = one.named.get(key), one.star
                if star is None:
                    after = [child] if child is not None else []
                elif star.ends:
                    continue
                else:
                    after = [child, star] if child is not None else [star]
            kind = value.__class__
            if kind is str:
                if value in CONSTANTS or (held and (ident, key, "string") in self.covered):
                    continue
                if len(value) < _BASE64_MIN or self._readable(value):
                    values.append(TextSlot(role, node, key, "field"))
            elif kind is dict or kind is list:
                stack.append((value, after))
            elif (kind is int or kind is float) and not (
                held and (ident, key, "number") in self.covered
            ):
                values.append(TextSlot(role, node, key, "field", None, "number"))

    def _readable(self, value: str) -> bool:
        """False for base64 the detector cannot read (an image's is left to ``data.images``,
        anything else is noted as uninspectable)."""
        if len(value) < _BASE64_MIN:
            return True
        head = _DATA_URL.match(value)
        if head is not None:
            media = head.group(1) or ""
            if not media.startswith("image/"):
                self.uninspectable.append("base64 data that is not an image")
            elif "image" not in self.media:
                self.media.append("image")
            return False
        if _BASE64.match(value):
            self.uninspectable.append("base64 data of an unknown type")
            return False
        return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def every_leaf(request: NormalizedRequest, paths: NonTextPaths) -> None:
    """Slots for every string, key and number of ``request.body`` no slot covers and
    ``paths`` does not list. Every surface's ``parse`` calls it last; the boundary step
    calls it with no list for a request whose surface did not (fail closed)."""
    walk = _Walk(request.texts, request.json_texts, "request", request.uninspectable, request.media)
    walk.node(request.body, [paths.root])
    request.texts.extend(walk.values)
    request.texts.extend(walk.keys)  # after the values they name (see ``TextSlot``)
    request.complete = True


def answer_leaves(answer: Answer, paths: NonTextPaths) -> None:
    """``every_leaf`` for a whole answer: every string, key and number the model (or the
    provider) sent back that no slot covers and ``paths`` does not list is a slot; what
    cannot be read makes the answer unreadable (the boundary refuses it)."""
    if not isinstance(answer.data, dict | list):
        return
    unreadable: list[str] = []
    walk = _Walk(answer.texts, answer.owners, "assistant", unreadable, unreadable)
    walk.node(answer.data, [paths.root])
    answer.texts.extend(walk.values)
    answer.texts.extend(walk.keys)
    if unreadable:
        answer.unreadable = unreadable[0]


# The order providers read a prompt in (and cache its prefix by): tools, system, messages.
_PROMPT_FIRST = ("tools", "system", "instructions", "messages", "input")
_END = object()


def prompt_order(request: NormalizedRequest) -> list[int]:
    """The indices of ``request.texts`` in the order the provider reads them.

    Placeholders are numbered in this order (``<EMAIL_ADDRESS_1>`` is the first e-mail the
    prompt holds), so in a conversation that grows by appending turns a value keeps its
    number in every later request, and the provider's prompt cache keeps hitting: a new value
    only renumbers values that come after it, where the prompt changed anyway.
    """
    position: dict[tuple[int, Any], int] = {}
    body = request.body
    keys = [k for k in _PROMPT_FIRST if k in body] + [k for k in body if k not in _PROMPT_FIRST]
    stack: list[tuple[Any, Iterator[Any]]] = [(body, iter(keys))]
    while stack:  # depth first, in document order
        node, pending = stack[-1]
        key = next(pending, _END)
        if key is _END:
            stack.pop()
            continue
        position[(id(node), key)] = len(position)
        child = node[key]
        if isinstance(child, dict):
            stack.append((child, iter(list(child))))
        elif isinstance(child, list):
            stack.append((child, iter(range(len(child)))))
    unplaced = len(position)

    def place(i: int) -> int:
        slot = request.texts[i]
        at = position.get((id(slot.holder), slot.key))
        if at is None and slot.owner is not None:  # inside a JSON string: where that is
            at = position.get((id(slot.owner.holder), slot.owner.key))
        return unplaced if at is None else at

    return sorted(range(len(request.texts)), key=place)


async def inspect_leaves(channels: Channels, obj: Any, paths: NonTextPaths) -> bool:
    """Every string, key and number of a streamed event's ``obj`` that ``paths`` does not
    list, inspected whole and rewritten in place (an error event's message, a tool's name,
    a citation, a field nobody models). What cannot be read ends the stream. True if
    anything changed."""
    if not isinstance(obj, dict | list):
        return False
    unreadable: list[str] = []
    walk = _Walk([], [], "assistant", unreadable, unreadable)
    walk.node(obj, [paths.root])
    if unreadable:
        raise shape_error(unreadable[0])
    changed = False
    for slot in walk.values + walk.keys:
        text = slot.text
        out = await channels.feed((_WHOLE, "whole", 0), text)
        for _, rest in await channels.finish(_WHOLE):
            out += rest
        if out != text:
            slot.replace(out)
            changed = True
    return changed


# The channel index of one-off inspections: no choice or block has it.
_WHOLE = -1


def unknown_block(request: NormalizedRequest, block: dict[str, Any], where: str) -> None:
    """A content block or part of a type the surface does not model: its strings are
    inspected by ``every_leaf``; one with no string to read is uninspectable."""
    if not _has_text(block):  # the client's type name is not repeated: it could be anything
        request.uninspectable.append(f"a block of an unknown type with no text ({where})")


def _has_text(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, str) and key != "type":
                return True
            if isinstance(child, dict | list):
                stack.append(child)
    return False
