"""``GET /admin/limits``: current usage from the running gateway's store (the only way to
read a memory store from outside). Mounted through ``admin_router``'s ``extra``."""

from __future__ import annotations

import time
from typing import Any

import orjson
from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from gateway import errors
from gateway.errors import GatewayError
from gateway.limits.report import usage_rows
from gateway.limits.step import Limits
from gateway.limits.store import StoreError
from gateway.policy.registry import PolicyRegistry

__all__ = ["limits_route"]


def limits_route(limits: Limits, registry: PolicyRegistry) -> HTTPRouteHandler:
    @get("/limits")
    async def show(request: Request[Any, Any, Any]) -> Response[bytes]:
        params = request.query_params
        try:
            rows = await usage_rows(
                limits.store,
                limits.prefix,
                registry.all(),
                time.time(),
                params.get("workflow"),
                params.get("subject"),
            )
        except StoreError as exc:
            raise GatewayError(errors.LIMITS_STORE_UNAVAILABLE, detail=str(exc)) from None
        return Response(orjson.dumps({"limits": rows}), media_type="application/json")

    return show
