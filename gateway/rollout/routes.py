"""The rollout's admin routes, mounted through ``admin_router``'s ``extra`` (so behind its
admin-role guard):

- ``GET /admin/rollout``: every workflow's live and candidate versions, canary share, pause
  and abort (with the figures that set it off) and the last window's signals;
- ``POST /admin/workflows/{workflow}/pause`` with ``{"reason": "..."}``;
- ``POST /admin/workflows/{workflow}/resume``.

Who paused or resumed is the admin the request authenticated as.
"""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Request, get, post
from litestar.handlers import HTTPRouteHandler

from gateway import errors
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.policy.registry import PolicyRegistry
from gateway.rollout.service import Rollout
from gateway.stores.redis import StoreError

__all__ = ["rollout_routes"]

MAX_REASON = 500


def rollout_routes(rollout: Rollout, registry: PolicyRegistry) -> list[HTTPRouteHandler]:
    def known(workflow: str) -> str:
        if workflow not in registry.all():
            raise GatewayError(
                errors.POLICY_UNKNOWN_WORKFLOW, f"Unknown workflow '{workflow[:64]}'."
            )
        return workflow

    @get("/rollout")
    async def status() -> dict[str, Any]:
        return {"workflows": rollout.status()}

    @post("/workflows/{workflow:str}/pause", status_code=200)
    async def pause(request: Request[Any, Any, Any]) -> dict[str, Any]:
        name = known(str(request.path_params["workflow"]))
        reason = _reason(await request.body())
        ctx: RequestContext = request.state.ctx
        try:
            paused = await rollout.pause(name, reason, ctx.principal)
        except StoreError as exc:
            raise GatewayError(errors.ROLLOUT_STORE_UNAVAILABLE, detail=str(exc)) from None
        return {"workflow": name, "paused": paused}

    @post("/workflows/{workflow:str}/resume", status_code=200)
    async def resume(request: Request[Any, Any, Any]) -> dict[str, Any]:
        name = known(str(request.path_params["workflow"]))
        ctx: RequestContext = request.state.ctx
        try:
            was = await rollout.resume(name, ctx.principal)
        except StoreError as exc:
            raise GatewayError(errors.ROLLOUT_STORE_UNAVAILABLE, detail=str(exc)) from None
        live = registry.get(name)
        return {
            "workflow": name,
            "resumed": was,
            "mode_paused": live is not None and live.source.mode == "paused",
        }

    return [status, pause, resume]


def _reason(body: bytes) -> str:
    """The operator's reason: required, one line of text, at most ``MAX_REASON`` characters."""
    try:
        parsed = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        parsed = None
    reason = parsed.get("reason") if isinstance(parsed, dict) else None
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise GatewayError(
            errors.REQUEST_INVALID,
            f'Send {{"reason": "..."}}: why the workflow is paused (1-{MAX_REASON} characters).',
        )
    return " ".join(reason.split())
