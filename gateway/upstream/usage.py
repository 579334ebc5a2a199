"""Token counts as the provider reported them, for the audit record and the limits step.

The counts come from the answer's one reading by its surface (``surfaces.Answer`` or a
``StreamReader``); this only copies them onto the request's context.
"""

from __future__ import annotations

from gateway.context import RequestContext
from gateway.surfaces import Answer, StreamReader

__all__ = ["note_usage"]


def note_usage(ctx: RequestContext, read: Answer | StreamReader) -> None:
    """The counts ``read`` found; a count it did not find leaves the context's as it was."""
    if read.tokens_in is not None:
        ctx.tokens_in = read.tokens_in
    if read.tokens_out is not None:
        ctx.tokens_out = read.tokens_out
