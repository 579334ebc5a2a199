"""Split a byte stream into whole Server-Sent Events, so each can be relayed or inspected."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from gateway.upstream.provider import UpstreamFailure

__all__ = ["EventSplitter", "replay", "sse_events"]


class EventSplitter:
    """Whole events out of chunks fed one by one, each with its terminating blank line.

    A plain object rather than an async generator so the upstream's stream reader
    (gateway/upstream/http.py) splits in its own loop: each generator layer costs a frame
    switch per chunk, and the first event of a stream pays them all (issue 22). Events are
    cut one at a time (``next``), so a chunk holding a whole answer does not have its later
    events copied out before the first goes on.

    CRLF line ends are normalized to LF. Linear in the stream's length whatever its
    chunking: each byte is searched once, and an event growing past ``max_event_bytes``
    raises UpstreamFailure ``too_large``.
    """

    __slots__ = ("_buffer", "_carry", "_max", "_scanned", "_start")

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._buffer = bytearray()
        self._start = 0  # buffer[:start]: events already taken
        self._scanned = 0  # buffer[start:scanned] holds no blank line
        self._carry = b""  # a CR ending the last chunk: its LF may start the next one
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> None:
        """Add ``chunk``; ``next`` then takes the events it completes."""
        if self._carry:
            chunk = self._carry + chunk
            self._carry = b""
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                chunk, self._carry = chunk[:-1], b"\r"
            chunk = chunk.replace(b"\r\n", b"\n")
        if start := self._start:  # once per chunk, not per event
            del self._buffer[:start]
            self._scanned -= start
            self._start = 0
        self._buffer += chunk

    def next(self) -> bytes | None:
        """The next whole event, or None until more is fed."""
        buffer = self._buffer
        start = self._start
        end = buffer.find(b"\n\n", max(self._scanned - 1, start))
        if end < 0:
            self._scanned = len(buffer)
            if self._max is not None and len(buffer) - start > self._max:
                raise UpstreamFailure("too_large", f"an event over {self._max} bytes")
            return None
        self._start = self._scanned = end + 2
        return bytes(buffer[start : end + 2])

    def rest(self) -> bytes | None:
        """At the stream's end: the bytes after the last blank line (a stream cut
        mid-event), as they are, so the caller can tell the event is incomplete."""
        rest = bytes(self._buffer[self._start :]) + self._carry
        self._buffer.clear()
        self._start = self._scanned = 0
        self._carry = b""
        return rest if rest.strip() else None


async def sse_events(
    chunks: AsyncIterable[bytes], max_event_bytes: int | None = None
) -> AsyncIterator[bytes]:
    """Yield each event of ``chunks`` as soon as it is complete (EventSplitter's rules),
    then the bytes of a cut last event, if any."""
    splitter = EventSplitter(max_event_bytes)
    async for chunk in chunks:
        splitter.feed(chunk)
        while (event := splitter.next()) is not None:
            yield event
    if (rest := splitter.rest()) is not None:
        yield rest


async def replay(events: list[bytes]) -> AsyncIterator[bytes]:
    """Events already in hand (a held stream, a canned answer) as a stream again."""
    for event in events:
        yield event
