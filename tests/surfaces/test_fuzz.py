"""Fuzzing every registered wire surface: whatever a client sends is parsed or refused with a
GatewayError; whatever an upstream sends is read, refused, or raises one of ``SHAPE_ERRORS``,
which the pipeline maps to ``boundary.answer_shape`` (tests/hardening shows it end to end).
Never another exception: that would be a 500, or a stream cut without its error event.

Each target starts from the checked-in corpus (tests/data/fuzz/{api}/, the shapes of issue 23's
probes among them; a surface without its own corpus gets every other's) and mutates it: a
subtree replaced by arbitrary JSON. Examples are bounded so the suite runs them in seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import ServerConfig
from gateway.errors import GatewayError
from gateway.surfaces import SURFACES, Surface
from gateway.surfaces.base import SHAPE_ERRORS
from gateway.surfaces.bounds import read_request

UNREADABLE: tuple[type[Exception], ...] = (GatewayError, *SHAPE_ERRORS)
CORPUS = Path(__file__).parent.parent / "data" / "fuzz"
EXAMPLES = settings(
    max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

_leaves = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text()
_json = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    ["index", "content", "delta", "choices", "type", "text", "tool_calls", "function",
     "arguments", "usage", "message", "role", "messages", "tools", "input", "partial_json",
     "content_block", "logprobs", "finish_reason", "stop_reason", "system", "source"]
)  # fmt: skip


def _files(api: str, kind: str) -> list[Path]:
    own = sorted((CORPUS / api / kind).glob("*"))
    return own or sorted(CORPUS.glob(f"*/{kind}/*"))


def _mutate(doc: Any, data: st.DataObject) -> Any:
    """``doc`` with one subtree, or one key's value, replaced by arbitrary JSON."""
    if not isinstance(doc, dict | list) or not doc or data.draw(st.integers(0, 4)) == 0:
        return data.draw(_json)
    if isinstance(doc, dict):
        key = data.draw(st.sampled_from(sorted(doc)) | _keys)
        return {**doc, key: _mutate(doc.get(key), data)}
    i = data.draw(st.integers(0, len(doc) - 1))
    return [*doc[:i], _mutate(doc[i], data), *doc[i + 1 :]]


def _mutated(raw: bytes, data: st.DataObject) -> bytes:
    try:
        return orjson.dumps(_mutate(orjson.loads(raw), data))
    except orjson.JSONEncodeError:  # a seed too deep to write again: sent as it is
        return raw


def _sse_events(raw: bytes) -> list[bytes]:
    return [e + b"\n\n" for e in raw.split(b"\n\n") if e.strip()]


def _mutate_event(event: bytes, data: st.DataObject) -> bytes:
    head, _, payload = event.rstrip(b"\n").rpartition(b"data: ")
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError:
        return event
    return head + b"data: " + _mutated(payload, data) + b"\n\n"


class _Passing:
    """The boundary's hold-back channels reduced to passing text on whole (``Channels``)."""

    def __init__(self) -> None:
        self._open: set[int] = set()

    async def feed(self, channel: tuple[int, str, int], piece: str) -> str:
        self._open.add(channel[0])
        return piece

    async def finish(self, index: int) -> list[tuple[tuple[int, str, int], str]]:
        self._open.discard(index)
        return []

    def pending(self) -> list[int]:
        return sorted(self._open)


async def _replay(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


async def _request(surface: Surface, raw: bytes) -> None:
    try:
        request = await read_request(surface, raw, ServerConfig())
    except GatewayError:
        return
    for slot in request.texts:  # as the boundary rewrites them
        slot.replace(slot.text[::-1] + "<MASKED>")
    request.commit()
    orjson.dumps(request.body)  # what goes upstream is always writable


def _answer(surface: Surface, raw: bytes) -> None:
    try:
        answer = surface.read_answer(raw, strip_logprobs=True)
        for slot in answer.texts:
            slot.replace("<MASKED>")
        answer.changed = True
        [choice.text for choice in answer.choices]
        answer.body()
    except UNREADABLE:
        return


async def _stream(surface: Surface, events: list[bytes]) -> None:
    reader = surface.stream_reader(texts=True, strip_logprobs=True)
    try:
        for event in events:
            reader.read(event)
    except UNREADABLE:
        pass
    try:
        async for _ in surface.rewrite_stream(_Passing(), _replay(events)):
            pass
    except UNREADABLE:
        pass


@pytest.mark.parametrize("surface", list(SURFACES.values()), ids=list(SURFACES))
@EXAMPLES
@given(data=st.data())
def test_requests_parse_or_are_refused(surface: Surface, data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(_files(surface.api, "request")))
    raw = seed.read_bytes()
    if data.draw(st.booleans()):
        raw = _mutated(raw, data)
    asyncio.run(_request(surface, raw))


@pytest.mark.parametrize("surface", list(SURFACES.values()), ids=list(SURFACES))
@EXAMPLES
@given(data=st.data())
def test_answers_are_read_or_refused(surface: Surface, data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(_files(surface.api, "answer")))
    raw = seed.read_bytes()
    if data.draw(st.booleans()):
        raw = _mutated(raw, data)
    _answer(surface, raw)


@pytest.mark.parametrize("surface", list(SURFACES.values()), ids=list(SURFACES))
@EXAMPLES
@given(data=st.data())
def test_streams_are_read_or_refused(surface: Surface, data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(_files(surface.api, "stream")))
    events = _sse_events(seed.read_bytes())
    if events and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(events) - 1))
        events[i] = _mutate_event(events[i], data)
    asyncio.run(_stream(surface, events))


@pytest.mark.parametrize(
    "path", sorted(CORPUS.glob("*/*/*")), ids=lambda p: str(p.relative_to(CORPUS))
)
def test_the_corpus_itself(path: Path) -> None:
    """Every checked-in shape through every surface, unmutated."""
    for surface in SURFACES.values():
        kind = path.parent.name
        if kind == "request":
            asyncio.run(_request(surface, path.read_bytes()))
        elif kind == "answer":
            _answer(surface, path.read_bytes())
        else:
            asyncio.run(_stream(surface, _sse_events(path.read_bytes())))
