"""An approved request sent on: through the whole pipeline again, under the workflow's policy
as it is now, as the caller who made it (their subject, roles and team, kept on the item; no
credential is kept), with its masked body. It leaves its own audit record."""

from __future__ import annotations

import orjson

from gateway.audit.trail import AuditTrail
from gateway.auth.principal import Principal
from gateway.context import RequestContext
from gateway.pipeline import Call, Pipeline
from gateway.review.service import Resend, Reviews
from gateway.review.store import Item
from gateway.surfaces import surface_of

__all__ = ["resender"]


def resender(pipeline: Pipeline, trail: AuditTrail, reviews: Reviews) -> Resend:
    async def resend(item: Item) -> tuple[int, bytes]:
        surface = surface_of(item.api)
        ctx = RequestContext(surface.endpoint, item.workflow)
        ctx.principal = Principal(item.subject, frozenset(item.roles), item.team)
        body = orjson.dumps(item.request or {})

        async def read() -> bytes:
            return body

        reviews.resending.add(ctx.request_id)
        try:
            reply = await pipeline.complete(ctx, Call(surface, item.workflow, {}, read))
        finally:
            reviews.resending.discard(ctx.request_id)
        await trail.finish(ctx, reply.status)
        return reply.status, reply.body

    return resend
