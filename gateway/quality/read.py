"""Read a streamed answer whole for the checks: every event held, read once by its surface.

``strip`` removes the logprobs the gateway asked for on the client's behalf (the client did
not), so the client gets the answer it would have had without the check. A whole answer needs
nothing here: its surface's ``read_answer`` is the one reading.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.surfaces import Choice, StreamReader, Surface
from gateway.surfaces.base import broken_stream
from gateway.upstream.provider import UpstreamFailure

__all__ = ["read_stream"]


async def read_stream(
    surface: Surface, events: AsyncIterator[bytes], strip: bool
) -> tuple[list[Choice], list[bytes], StreamReader]:
    """Every event of a stream, held: the choices, the events to replay and the reading
    (its usage). A stream that breaks, carries an error event or ends without its final
    event raises ``upstream.broken_stream``: nothing of it has reached the client, so a
    fallback may answer."""
    reader = surface.stream_reader(texts=True, strip_logprobs=strip)
    held: list[bytes] = []
    try:
        async for event in events:
            held.append(reader.read(event))
    except UpstreamFailure as exc:
        raise broken_stream(str(exc)) from exc
    if not reader.done:
        raise broken_stream("the stream ended without its final event")
    choices = [reader.choices[i] for i in sorted(reader.choices)]
    for choice in choices:
        choice.finish()
    return choices, held, reader
