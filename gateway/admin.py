"""``/admin/...``: the operator's API. One guard covers every route of the router, so a route
added later inherits it: the caller must authenticate and hold ``auth.admin_role``.

Only that role opens these routes; no workflow policy or other setting grants it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litestar import Router, get, route
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.types import ControllerRouterHandler

from gateway import errors
from gateway.auth import Authenticator
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.policy import PolicyRegistry
from gateway.policy.reload import shown

__all__ = ["admin_router"]


def admin_router(
    authenticator: Authenticator,
    admin_role: str,
    registry: PolicyRegistry,
    policies_dir: Path,
    extra: Sequence[ControllerRouterHandler] = (),
) -> Router:
    """``/admin`` with its guard; later features pass their handlers in ``extra``. Policy
    files are named relative to ``policies_dir``."""

    async def require_admin(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        ctx = connection.state.ctx = RequestContext("admin", None)
        principal = ctx.principal = await authenticator.authenticate(connection.headers)
        if admin_role not in principal.roles:
            raise GatewayError(errors.ACCESS_ADMIN_REQUIRED)

    @get("/policies")
    async def policies() -> dict[str, object]:
        """The loaded workflows: what is being enforced, in which version, from which file."""
        return {
            "policies": [
                {
                    "workflow": name,
                    "version": p.version,
                    "path": shown(p.path, policies_dir),
                    "owner": p.source.owner,
                    "mode": p.source.mode,
                    "description": p.source.description,
                }
                for name, p in sorted(registry.all().items())
            ]
        }

    # Unknown admin paths answer 404 only to an admin: the guard runs first, so the route
    # table is not probed without credentials.
    @route("/{rest:path}", http_method=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def unknown() -> None:
        raise NotFoundException()

    return Router("/admin", route_handlers=[policies, *extra, unknown], guards=[require_admin])
