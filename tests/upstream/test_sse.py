"""SSE framing: the same whole events whatever the chunking of the bytes on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from gateway.upstream.sse import sse_events

EVENTS = [
    b'data: {"a": 1}\n\n',
    b"event: message_start\ndata: {}\n\n",
    b": keep-alive comment\n\n",
    b"data: [DONE]\n\n",
]
WIRE = b"".join(EVENTS)


def frame(chunks: list[bytes]) -> list[bytes]:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def collect() -> list[bytes]:
        return [event async for event in sse_events(source())]

    return asyncio.run(collect())


@given(st.lists(st.integers(min_value=0, max_value=len(WIRE)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [WIRE[a:b] for a, b in zip([0, *points], [*points, len(WIRE)], strict=True)]
    assert frame(chunks) == EVENTS


def test_crlf_is_normalized_and_a_cut_tail_is_kept() -> None:
    assert frame([b"data: 1\r\n\r\ndata: 2\r", b"\n\r\n"]) == [b"data: 1\n\n", b"data: 2\n\n"]
    assert frame([b"data: 1\n\ndata: par"]) == [b"data: 1\n\n", b"data: par"]
