"""The relay step of a stream: events passed on as they arrive, its end recorded.

A stream's response leaves the pipeline (gateway/pipeline.py) before its answer has been
read: this generator reads it event by event (through the boundary's hold-back window when
the policy inspects answers), counts its usage, and makes its audit record before the final
event goes out, or when the stream ends any other way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from time import perf_counter

from gateway import errors
from gateway.audit.trail import AuditTrail
from gateway.boundary.step import Inspection
from gateway.boundary.stream import inspect_stream
from gateway.context import Decision, RequestContext
from gateway.errors import GatewayError
from gateway.limits.step import Limits
from gateway.steps import Step
from gateway.surfaces import Surface
from gateway.surfaces.base import SHAPE_ERRORS, shape_error
from gateway.upstream.provider import UpstreamFailure, UpstreamResponse
from gateway.upstream.usage import note_usage

__all__ = ["relay", "unreadable"]

log = logging.getLogger("gateway.pipeline")

# How a stream's failure reads to the client, by its kind (others: a broken stream).
_STREAM_FAILURES = {
    "timeout": errors.UPSTREAM_STREAM_TIMEOUT,
    "too_large": errors.UPSTREAM_TOO_LARGE,
}


async def relay(
    ctx: RequestContext,
    surface: Surface,
    response: UpstreamResponse,
    inspection: Inspection | None,
    trail: AuditTrail,
    limits: Limits | None,
) -> AsyncIterator[bytes]:
    """Pass events on as they arrive (through the boundary's hold-back window when the
    policy inspects answers); a client that goes away cancels this generator, and
    closing the upstream response cancels the upstream request.

    The final event (``[DONE]``, ``message_stop``) waits for the audit record, so with
    ``durability: sync`` a completed stream always has its record."""
    assert response.events is not None
    ctx.enter(Step.RELAY)  # the inspect_answer step runs inside it, event by event
    events = response.events
    if inspection is not None:
        events = inspect_stream(inspection, surface, events)
    final = surface.final_event
    framed = b"\n\n" + final  # the final event behind others in one frame
    reader = surface.stream_reader(texts=False)  # the usage, read once per event

    async def finish() -> bool:
        """The end of a stream: its cost settled, then its record made."""
        if limits is not None:
            await limits.settle(ctx)
        return await trail.finish(ctx, response.status)

    try:
        async for event in events:
            reader.read(event)
            note_usage(ctx, reader)
            if limits is not None and not limits.relays(ctx, reader.usage_only):
                continue
            # A JSON string cannot hold a raw blank line, so this is only ever a frame.
            if event.startswith(final) or framed in event:
                ctx.stream_end = "completed"
                if not await finish():
                    yield _withheld(ctx, surface)
                    return
            if not ctx.first_event:
                ctx.first_event = perf_counter()  # time to first event (gateway/observe/)
            yield event
        if not ctx.audited:  # the upstream ended without its final event
            ctx.stream_end = "incomplete"
            ended = GatewayError(errors.UPSTREAM_BROKEN_STREAM, detail="no final event")
            ctx.decisions.append(Decision(Step.RELAY, "error", ended.reason.code))
            if not await finish():
                yield _withheld(ctx, surface)
                return
            yield surface.stream_error(ended, ctx.request_id)  # never a silent end
    except UpstreamFailure as exc:
        log.warning("request %s: upstream stream broke: %s", ctx.request_id, exc)
        broke = GatewayError(_STREAM_FAILURES.get(exc.kind, errors.UPSTREAM_BROKEN_STREAM))
        ctx.decisions.append(Decision(Step.RELAY, "error", broke.reason.code))
        ctx.stream_end = "upstream_broken"
        if not await finish():
            yield _withheld(ctx, surface)
            return
        yield surface.stream_error(broke, ctx.request_id)
    except SHAPE_ERRORS as exc:  # an event of a shape the readers did not expect
        unread = unreadable(ctx, exc)
        ctx.decisions.append(Decision(Step.INSPECT_ANSWER, "deny", unread.reason.code))
        ctx.stream_end = "blocked"
        if not await finish():
            yield _withheld(ctx, surface)
            return
        yield surface.stream_error(unread, ctx.request_id)  # fail closed, never a bare cut
    except GatewayError as exc:  # the boundary ended the answer: blocked or unreadable
        log.info("request %s: answer stream ended: %s", ctx.request_id, exc)
        ctx.decisions.append(Decision(Step.INSPECT_ANSWER, "deny", exc.reason.code))
        ctx.stream_end = "blocked"
        if not await finish():
            yield _withheld(ctx, surface)
            return
        yield surface.stream_error(exc, ctx.request_id)
    finally:
        await response.aclose()
        if not ctx.audited:  # the client went away: nobody waits for the record
            ctx.stream_end = "client_cut"
            if limits is not None:
                limits.settle_nowait(ctx)
            trail.abandon(ctx, response.status)


def unreadable(ctx: RequestContext, exc: Exception) -> GatewayError:
    """An answer of a shape its reader did not expect, as the refusal it becomes."""
    log.warning("request %s: unreadable answer: %r", ctx.request_id, exc)
    return shape_error(f"a shape its reader did not expect ({type(exc).__name__})")


def _withheld(ctx: RequestContext, surface: Surface) -> bytes:
    ctx.decisions.append(Decision(Step.AUDIT, "error", errors.AUDIT_UNAVAILABLE.code))
    return surface.stream_error(GatewayError(errors.AUDIT_UNAVAILABLE), ctx.request_id)
