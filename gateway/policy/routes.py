"""``POST /admin/policies/reload`` and the policy part of ``/readyz``."""

from __future__ import annotations

from typing import Any

from litestar import Response, post
from litestar.handlers import HTTPRouteHandler

from gateway.policy.registry import PolicyRegistry, ReloadError
from gateway.policy.reload import PolicyReloader

__all__ = ["readiness", "reload_route"]


def _error(error: ReloadError | None) -> dict[str, object] | None:
    if error is None:
        return None
    return {"at": error.at, "candidates_only": error.candidates, "problems": list(error.problems)}


def readiness(registry: PolicyRegistry) -> dict[str, object]:
    """Which policy set is live, its candidates, and why the last reload was refused."""
    current = registry.current
    return {
        "policies": {n: p.version for n, p in sorted(current.policies.items())},
        "policy_set": {
            "version": current.version,
            "generation": current.generation,
            "loaded_at": current.loaded_at,
            "candidates": {n: c.version for n, c in sorted(current.candidates.items())},
            "last_reload_error": _error(registry.last_error),
        },
    }


def reload_route(reloader: PolicyReloader, registry: PolicyRegistry) -> HTTPRouteHandler:
    @post("/policies/reload", status_code=200)
    async def reload_policies() -> Response[dict[str, Any]]:
        """Reload now; 200 when the new set is live, 422 (with every problem) when the last
        good set stays."""
        result = await reloader.reload("admin request")
        return Response(
            {"applied": result.applied, **readiness(registry)},
            status_code=200 if result.applied else 422,
        )

    return reload_policies
