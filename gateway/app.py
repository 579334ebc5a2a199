"""The app factory: every service is built once here and handed to the handlers.

Handlers are thin: they turn an HTTP request into a ``Call`` for the pipeline and its
``Reply`` back into a response. Nothing is kept in module globals.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.exceptions import (
    ClientException,
    HTTPException,
    InternalServerException,
    MethodNotAllowedException,
    NotFoundException,
)
from litestar.handlers import HTTPRouteHandler
from litestar.response import Stream
from litestar.types import Message, Scope

from gateway import errors
from gateway.admin import admin_router
from gateway.audit import AuditTrail, open_store
from gateway.audit.admin import audit_route
from gateway.audit.history import loaded_recorder, open_history
from gateway.audit.names import route_path
from gateway.boundary.phones import warm_up
from gateway.boundary.service import configured_ner
from gateway.config import GatewayConfig
from gateway.console.routes import console_router
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.limits.admin import limits_route
from gateway.limits.service import build_limits
from gateway.model_routes import ModelRoutes, templates_of
from gateway.observe.service import build_observe
from gateway.pipeline import Call, Reply
from gateway.policy.reload import PolicyReloader, folder_fingerprint, start_registry
from gateway.policy.routes import readiness, reload_route
from gateway.protocol import body_timed_out
from gateway.review.resend import resender
from gateway.review.routes import app_review_route, review_router
from gateway.review.service import Reviews
from gateway.review.store import open_review_store
from gateway.rollout.routes import rollout_routes
from gateway.rollout.service import build_rollout
from gateway.services import (
    audit_writer,
    build_authenticator,
    build_pipeline,
    refuse_per_process_state,
    start_purging,
)
from gateway.stores.shared import shared_redis
from gateway.surfaces import RESPONSES, SURFACES, Surface, surface_for
from gateway.surfaces.openai_responses.answer import read_items
from gateway.upstream import Provider, build_providers

__all__ = ["create_app"]

log = logging.getLogger("gateway")

HttpRequest = Request[Any, Any, State]
# An id the provider issued: letters, digits, '_' and '-' only, so it is never a path of ours.
_PROVIDER_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def create_app(
    config: GatewayConfig, env: Mapping[str, str] | None = None, *, workers: int = 1
) -> Litestar:
    """Build the gateway for ``config``; raises ConfigError if a policy or key file is bad,
    or if ``workers`` processes would each keep state that must be shared (gateway/workers.py).
    """
    environ = dict(os.environ) if env is None else dict(env)
    ner = configured_ner(config)
    policies_dir = config.path(config.policies_dir)
    seen = folder_fingerprint(policies_dir)  # before loading: a change meanwhile is reloaded
    registry = start_registry(policies_dir, config.models, ner)
    history = loaded_recorder(open_history(config)) if config.audit.enabled else None
    reloader = PolicyReloader(registry, policies_dir, config.models, ner, seen=seen, record=history)
    if workers > 1 and not config.stores.redis_url:
        refuse_per_process_state(config, registry)
    authenticator = build_authenticator(config, environ)
    providers: dict[str, Provider] = {}
    observe = build_observe(config, registry, authenticator, environ)
    store = open_store(config, environ, serving=True) if config.audit.enabled else None
    writer = audit_writer(config, store, workers, observe) if store is not None else None
    trail = AuditTrail(writer)
    redis = shared_redis(config)
    limits = build_limits(config, redis.limits if redis else None, workers)
    roles = config.console.roles
    rollout = build_rollout(config, registry, writer, observe.metrics, environ)
    reviews = Reviews(open_review_store(config), writer, config.review, environ, roles.admin)
    pipeline = build_pipeline(
        config,
        environ,
        registry,
        authenticator,
        providers,
        trail,
        limits,
        redis,
        workers,
        reviews,
        observe,
        rollout,
    )
    reviews.resend = resender(pipeline, trail, reviews)
    observe.watch(writer=writer, reviews=reviews.store)
    limit = config.max_body_bytes

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        # Connection pools belong to the running loop, so they are opened here.
        providers.update(build_providers(config, environ))
        await authenticator.start()  # the first JWKS fetch, bounded by its timeout
        if writer is not None:
            await writer.start()  # replays a spool left by the last run first
        purging = start_purging(config, store, registry)
        await rollout.poll()  # a restarted instance obeys the pauses before its first request
        reviews.start()  # resumes webhook deliveries a stop or crash left due
        polling = asyncio.create_task(rollout.run(), name="rollout-poll")
        watching = asyncio.create_task(reloader.watch(), name="policy-reload")
        await observe.start()
        log.info("serving %d workflows: %s", len(registry.all()), ", ".join(sorted(registry.all())))
        # Everything built so far lives as long as the process: keep it out of the cyclic GC's
        # full collections, which otherwise pause every request in flight (bench/overhead.py).
        gc.freeze()
        # At the default threshold (700 container objects) a young collection ran every 50-150
        # requests at c=16, 0.2-0.3 ms each: what 16 requests in flight hold at once is enough
        # to trigger it, garbage or not. Past the warm-up the count grows by well under one
        # object per request, so at 10,000 one runs every ~15,000 requests (docs/performance.md).
        # The older generations keep their defaults: a full collection (1-1.4 ms, as it also
        # empties the free lists) then comes about every 100 young ones, minutes apart, where
        # at 700 it came every 5-10 s under load (branch `holds`).
        thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_GC_THRESHOLD, *thresholds[1:])
        # Compiled now that /healthz answers, between requests, not before (phones.py).
        warming = asyncio.create_task(warm_up(), name="phone-patterns")
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            warming.cancel()
            watching.cancel()
            polling.cancel()
            await observe.stop()
            if purging is not None:
                purging.cancel()
            await authenticator.aclose()
            for provider in providers.values():
                await provider.aclose()
            await pipeline.aclose()
            await reviews.aclose()  # before the writer: its last action records go in
            await rollout.aclose()
            if writer is not None:
                await writer.close()

    async def handle_model_route(
        scope: Scope,
        surface: Surface,
        template: str,
        workflow: str | None,
        headers: Mapping[str, str],
        read_body: Callable[[], Awaitable[bytes]],
    ) -> Reply:
        """A model route served by ``ModelRoutes``: as ``run`` does through litestar."""
        workflow = workflow or headers.get("x-workflow") or None
        ctx = RequestContext(surface.endpoint, workflow)
        observe.begin(ctx, "POST", template, headers.get("traceparent"))
        try:
            reply = await pipeline.complete(ctx, Call(surface, workflow, headers, read_body))
        except Exception as exc:  # as on_error: the unexpected, without internals
            log.error("request %s failed", ctx.request_id, exc_info=exc)
            reply = pipeline.refuse(ctx, surface, GatewayError(errors.INTERNAL))
        # The audit step of a whole response, as ``audit_whole_response`` takes it for
        # litestar's routes (a stream is recorded by the relay).
        if ctx.streamed or await trail.finish(ctx, reply.status):
            return reply
        return pipeline.refuse(ctx, surface, GatewayError(errors.AUDIT_UNAVAILABLE))

    async def run(request: HttpRequest, surface: Surface) -> Response[Any]:
        ctx = request.state.ctx = _begin(request, surface.endpoint)
        call = Call(surface, ctx.workflow, request.headers, lambda: _read_body(request, limit))
        return _respond(await pipeline.complete(ctx, call))

    def route(surface: Surface) -> HTTPRouteHandler:
        """``POST /v1{path}`` and ``/w/{workflow}/v1{path}``: one per registered surface."""

        async def handle(request: HttpRequest) -> Response[Any]:
            return await run(request, surface)

        paths = [f"/v1{surface.path}", f"/w/{{workflow:str}}/v1{surface.path}"]
        return post(paths, status_code=200, name=surface.api)(handle)

    @get(["/v1/models", "/w/{workflow:str}/v1/models"])
    async def models(request: HttpRequest) -> Response[Any]:
        surface = _surface_for(request)
        ctx = request.state.ctx = _begin(request, "models")
        call = Call(surface, ctx.workflow, request.headers, lambda: _read_body(request, limit))
        return _respond(await pipeline.models(ctx, call))

    @get(["/v1/models/{model_id:str}", "/w/{workflow:str}/v1/models/{model_id:str}"])
    async def model(request: HttpRequest) -> Response[Any]:
        surface = _surface_for(request)
        ctx = request.state.ctx = RequestContext("models", _workflow(request))
        call = Call(surface, ctx.workflow, request.headers, lambda: _read_body(request, limit))
        return _respond(await pipeline.models(ctx, call, str(request.path_params["model_id"])))

    async def stored(request: HttpRequest, tail: str = "") -> Response[Any]:
        """A response the provider kept: read, listed or deleted where the workflow allows."""
        response_id = str(request.path_params["response_id"])
        ctx = request.state.ctx = RequestContext(RESPONSES.endpoint, _workflow(request))
        call = Call(RESPONSES, ctx.workflow, request.headers, lambda: _read_body(request, limit))
        if not _PROVIDER_ID.fullmatch(response_id):
            return _respond(pipeline.refuse(ctx, RESPONSES, GatewayError(errors.REQUEST_INVALID)))
        read = read_items if tail else RESPONSES.read_answer
        path = f"/responses/{response_id}{tail}"
        return _respond(await pipeline.stored(ctx, call, request.method, path, read))

    stored_paths = [
        "/v1/responses/{response_id:str}",
        "/w/{workflow:str}/v1/responses/{response_id:str}",
    ]

    @get(stored_paths, name="responses_get")
    async def stored_get(request: HttpRequest) -> Response[Any]:
        return await stored(request)

    @delete(stored_paths, name="responses_delete", status_code=200)
    async def stored_delete(request: HttpRequest) -> Response[Any]:
        return await stored(request)

    @get([p + "/input_items" for p in stored_paths], name="responses_items")
    async def stored_items(request: HttpRequest) -> Response[Any]:
        return await stored(request, "/input_items")

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz")
    async def readyz() -> Response[dict[str, object]]:
        """503 while the audit store is unreachable or on a schema this release must not use
        (gateway/audit/migrate.py); the policy set either way."""
        problem = await store.readiness() if store is not None else None
        if problem is not None:
            body = {"status": "not ready", "reason": problem, **readiness(registry)}
            return Response(body, status_code=503)
        return Response({"status": "ready", **readiness(registry)})

    def _begin(request: HttpRequest, endpoint: str, workflow: str | None = "") -> RequestContext:
        """The context of a request that reached a handler (or the error handler)."""
        ctx = RequestContext(endpoint, _workflow(request) if workflow == "" else workflow)
        return observe.begin(
            ctx, request.method, _route(request), request.headers.get("traceparent")
        )

    def on_error(request: HttpRequest, exc: Exception) -> Response[Any]:
        """Routing errors and the unexpected, in the API's own shape and without internals."""
        surface = _surface_for(request)
        ctx = getattr(request.state, "ctx", None) or _begin(request, "unknown", None)
        request.state.ctx = ctx  # so the audit hook records it
        if isinstance(exc, GatewayError):  # raised by a guard (the admin routes)
            err = exc
        elif isinstance(exc, NotFoundException):
            err = GatewayError(errors.REQUEST_UNKNOWN_ROUTE)
            ctx.path = route_path(request.url.path, ROUTE_WORDS, registry.all())
        elif isinstance(exc, MethodNotAllowedException):
            err = GatewayError(errors.REQUEST_METHOD_NOT_ALLOWED)
        elif isinstance(exc, HTTPException) and exc.status_code < 500:
            err = GatewayError(errors.REQUEST_INVALID)
        else:
            log.error("request %s failed", ctx.request_id, exc_info=exc)
            err = GatewayError(errors.INTERNAL)
        return _respond(pipeline.refuse(ctx, surface, err))

    async def audit_whole_response(message: Message, scope: Scope) -> None:
        """The audit step of every whole response, before its head is sent: every request
        that reached a handler or the error handler has ``ctx`` in its state (streams are
        recorded by the relay)."""
        state = scope.get("state") or {}
        ctx: RequestContext | None = state.get("ctx")
        if ctx is None or ctx.streamed:
            return
        if message["type"] == "http.response.start":
            if not await trail.finish(ctx, message["status"]):
                withheld = _withheld(ctx, scope)
                state["audit_withheld"] = withheld.body
                message["status"] = withheld.status
                message["headers"] = [
                    (k.encode(), v.encode()) for k, v in withheld.headers.items()
                ] + [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(withheld.body)).encode()),
                ]
        elif message["type"] == "http.response.body" and "audit_withheld" in state:
            message["body"] = state.pop("audit_withheld")
            message["more_body"] = False

    def _withheld(ctx: RequestContext, scope: Scope) -> Reply:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        surface = surface_for(scope.get("path", ""), headers)
        return pipeline.refuse(ctx, surface, GatewayError(errors.AUDIT_UNAVAILABLE))

    app = GatewayApp(
        route_handlers=[
            *(route(surface) for surface in SURFACES.values()),
            models,
            model,
            stored_get,
            stored_delete,
            stored_items,
            app_review_route(authenticator, reviews),
            review_router(authenticator, reviews, frozenset({roles.admin, roles.reviewer})),
            *(
                [
                    console_router(
                        config.console,
                        authenticator,
                        reviews,
                        store,
                        registry,
                        config.path(config.auth.api_keys_file),
                        limits,
                        config,
                        rollout,
                        writer,
                        observe.metrics,
                    )
                ]
                if config.console.enabled
                else []
            ),
            healthz,
            readyz,
            *observe.routes,
            admin_router(
                authenticator,
                config.auth.admin_role,
                registry,
                policies_dir,
                extra=[
                    reload_route(reloader, registry),
                    *([audit_route(store)] if store is not None else []),
                    limits_route(limits, registry),
                    *rollout_routes(rollout, registry),
                ],
            ),
        ],
        lifespan=[lifespan],
        before_send=[audit_whole_response],
        exception_handlers={Exception: on_error},
        request_max_body_size=limit,
        openapi_config=None,
        logging_config=None,  # `gateway serve` configures logging (--log-format)
    )
    # The model routes skip litestar altogether (gateway/model_routes.py).
    by_path = {surface.path: surface for surface in SURFACES.values()}
    app.model_routes = ModelRoutes(
        by_path, templates_of(app.asgi_router, by_path), handle_model_route, limit
    )
    return app


class GatewayApp(Litestar):
    """Litestar with the model routes served ahead of it, on bare ASGI."""

    model_routes: ModelRoutes | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        routes = self.model_routes
        if routes is not None and (route := routes.route(scope)) is not None:
            await routes.serve(scope, receive, send, *route)
            return
        await super().__call__(scope, receive, send)


# Container objects allocated (net) before a young collection (CPython's default: 700).
YOUNG_GC_THRESHOLD = 10_000

# Path segments of the gateway's own routes: shown as they are in an unknown route's record.
ROUTE_WORDS = frozenset(
    {"v1", "w", "models", "healthz", "readyz", "admin", "audit", "limits", "reload"}
    | {"rollout", "workflows", "pause", "resume"}
    | {word for s in SURFACES.values() for word in s.path.split("/") if word}
)


def _workflow(request: HttpRequest) -> str | None:
    workflow = request.path_params.get("workflow") or request.headers.get("x-workflow")
    return str(workflow) if workflow else None


def _route(request: HttpRequest) -> str:
    """The route template; a path no route matched, truncated (the query string never)."""
    template = request.scope.get("path_template")
    return str(template) if template else request.url.path[:64]


def _surface_for(request: HttpRequest) -> Surface:
    """The shapes the client reads: its route's API, or its SDK's (``surfaces.surface_for``)."""
    return surface_for(request.url.path, request.headers)


async def _read_body(request: HttpRequest, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit``."""
    chunks: list[bytes] = []
    try:
        async for chunk in request.stream():
            chunks.append(chunk)
    except ClientException as exc:
        if exc.status_code == 413:
            raise GatewayError(
                errors.REQUEST_TOO_LARGE, f"The request body exceeds {limit} bytes."
            ) from None
        raise GatewayError(errors.REQUEST_INVALID, detail=str(exc)) from None
    except InternalServerException as exc:  # litestar's word for a client gone mid-body
        raise GatewayError(errors.REQUEST_INVALID, detail=str(exc)) from None
    if body_timed_out(request.scope):  # the protocol ended the body: it came too slowly
        raise GatewayError(errors.REQUEST_BODY_TIMEOUT, headers={"connection": "close"})
    return b"".join(chunks)


def _respond(reply: Reply) -> Response[Any]:
    if reply.events is not None:
        return Stream(
            reply.events,
            status_code=reply.status,
            headers=reply.headers,
            media_type=reply.content_type,
        )
    return Response(
        reply.body, status_code=reply.status, headers=reply.headers, media_type=reply.content_type
    )
