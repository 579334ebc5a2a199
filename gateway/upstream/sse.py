"""Split a byte stream into whole Server-Sent Events, so each can be relayed or inspected."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from gateway.upstream.provider import UpstreamFailure

__all__ = ["replay", "sse_events"]


async def sse_events(
    chunks: AsyncIterable[bytes], max_event_bytes: int | None = None
) -> AsyncIterator[bytes]:
    """Yield each event with its terminating blank line, as soon as it is complete.

    CRLF line ends are normalized to LF. Bytes after the last blank line (a stream cut
    mid-event) are yielded as they are, so the caller can tell the event is incomplete.
    Linear in the stream's length whatever its chunking: each byte is searched once, and an
    event growing past ``max_event_bytes`` raises UpstreamFailure ``too_large``.
    """
    buffer = bytearray()
    scanned = 0  # buffer[:scanned] holds no blank line
    carry = b""  # a CR ending the last chunk: its LF may start the next one
    async for chunk in chunks:
        chunk = carry + chunk
        carry = b""
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                chunk, carry = chunk[:-1], b"\r"
            chunk = chunk.replace(b"\r\n", b"\n")
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n\n", max(scanned - 1, start))) >= 0:
            yield bytes(buffer[start : end + 2])
            start = scanned = end + 2
        if start:
            del buffer[:start]  # once per chunk, not per event
        scanned = len(buffer)
        if max_event_bytes is not None and len(buffer) > max_event_bytes:
            raise UpstreamFailure("too_large", f"an event over {max_event_bytes} bytes")
    buffer += carry
    if buffer.strip():
        yield bytes(buffer)


async def replay(events: list[bytes]) -> AsyncIterator[bytes]:
    """Events already in hand (a held stream, a canned answer) as a stream again."""
    for event in events:
        yield event
