"""The audit step: the one record of a request, made when the request finishes.

Two places call it, because a response finishes in two ways: a whole response just before
its head is sent (app.py: the model routes' handler, and the ``before_send`` hook for every
route litestar serves), and a stream
just before its final event, or in the relay's ``finally`` when the client went away
(pipeline.py). ``ctx.audited`` makes sure there is only one. Both enter ``Step.AUDIT`` here, so
the step is timed and observed like every other.
"""

from __future__ import annotations

from gateway.audit.record import build_record
from gateway.audit.writer import AuditWriter
from gateway.context import RequestContext
from gateway.steps import Step

__all__ = ["AuditTrail"]

_AUDIT = Step.AUDIT  # a global: an enum class's member read costs 4x (Python 3.11)


class AuditTrail:
    """``writer`` None: auditing is off (``audit.enabled: false``, benchmarks only)."""

    def __init__(self, writer: AuditWriter | None) -> None:
        self.writer = writer

    async def finish(self, ctx: RequestContext, status: int) -> bool:
        """Record ``ctx``; False when the response must not complete (on_failure: block)."""
        if ctx.audited:
            return True
        ctx.audited = True
        ctx.status = status
        ctx.enter(_AUDIT)
        try:
            return self.writer is None or await self.writer.put(build_record(ctx, status))
        finally:
            ctx.leave()

    def abandon(self, ctx: RequestContext, status: int) -> None:
        """Record a request nobody is waiting for any more (a cut stream)."""
        if not ctx.audited:
            ctx.audited = True
            ctx.status = status
            ctx.enter(_AUDIT)
            if self.writer is not None:
                self.writer.put_nowait(build_record(ctx, status))
            ctx.leave()
