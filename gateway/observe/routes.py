"""``GET /metrics``: open, admin-only, or on a port of its own (``observe.metrics.expose``).

Rendering reads every metric (every worker's files in multiprocess mode), so it runs in a
worker thread: a slow or frequent scraper never holds the event loop. The requests' pending
counts are flushed first, in the loop, where they are written.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar import Response, get
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from gateway import errors
from gateway.auth import Authenticator
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.observe.config import MetricsConfig
from gateway.observe.metrics import CONTENT_TYPE_LATEST, Metrics, multiprocess

__all__ = ["metrics_route", "serve_metrics_port"]

log = logging.getLogger("gateway.observe")


def metrics_route(
    metrics: Metrics, config: MetricsConfig, authenticator: Authenticator, admin_role: str
) -> HTTPRouteHandler:
    async def require_admin(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        ctx = connection.state.ctx = RequestContext("admin", None)
        principal = ctx.principal = await authenticator.authenticate(connection.headers)
        if admin_role not in principal.roles:
            raise GatewayError(errors.ACCESS_ADMIN_REQUIRED)

    guards = [require_admin] if config.expose == "admin" else []

    @get("/metrics", guards=guards, name="metrics")
    async def scrape() -> Response[bytes]:
        metrics.flush()
        body = await asyncio.to_thread(metrics.render_flushed)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return scrape


def serve_metrics_port(metrics: Metrics, config: MetricsConfig) -> bool:
    """``expose: port``: prometheus-client's own HTTP server in a thread (what it serves is
    at most one sampling interval old). With several workers the first to bind serves all of
    them; the others find the port taken. False: it was."""
    assert config.port is not None
    registry = metrics.registry
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        start_http_server(config.port, config.host, registry=registry)
    except OSError as exc:
        log.info("metrics port %s:%d not bound here: %s", config.host, config.port, exc)
        return False
    return True
