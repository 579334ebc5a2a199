"""Split a byte stream into whole Server-Sent Events, so each can be relayed or inspected."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

__all__ = ["replay", "sse_events"]


async def sse_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Yield each event with its terminating blank line, as soon as it is complete.

    CRLF line ends are normalized to LF. Bytes after the last blank line (a stream cut
    mid-event) are yielded as they are, so the caller can tell the event is incomplete.
    """
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        if b"\r" in buffer:  # the buffer, not the chunk: a CRLF may straddle two chunks
            buffer = buffer.replace(b"\r\n", b"\n")
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            yield buffer[: end + 2]
            buffer = buffer[end + 2 :]
    if buffer.strip():
        yield buffer


async def replay(events: list[bytes]) -> AsyncIterator[bytes]:
    """Events already in hand (a held stream, a canned answer) as a stream again."""
    for event in events:
        yield event
