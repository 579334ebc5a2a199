"""Builds what observes the gateway from ``gateway.yaml`` ``observe``: the step observer the
pipeline is given, the metrics and their route, the sampler; app.py only wires them in."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from litestar.handlers import HTTPRouteHandler

from gateway.audit.writer import AuditWriter
from gateway.auth import Authenticator
from gateway.config import GatewayConfig
from gateway.context import RequestContext
from gateway.limits.step import Limits
from gateway.observe.drift import Drift
from gateway.observe.fingerprints import Fingerprints, fingerprint_key
from gateway.observe.labels import Labels
from gateway.observe.logs import AccessLog
from gateway.observe.metrics import Metrics
from gateway.observe.observer import Finisher, Observer
from gateway.observe.routes import metrics_route, serve_metrics_port
from gateway.observe.sampler import Sampler
from gateway.observe.traces import Tracing, parse_traceparent
from gateway.policy.registry import PolicyRegistry
from gateway.review.store import ReviewStore
from gateway.upstream.breaker import Breaker
from gateway.upstream.http import OUTBOUND_TRACEPARENT

__all__ = ["Observe", "build_observe"]


@dataclass(slots=True)
class Observe:
    """``observer`` None: nothing observes the requests (metrics and the access log off)."""

    observer: Observer | None
    metrics: Metrics | None
    sampler: Sampler | None
    routes: list[HTTPRouteHandler] = field(default_factory=list)
    port: bool = False  # metrics served on a port of their own
    tracing: Tracing | None = None

    def begin(
        self, ctx: RequestContext, method: str, route: str, traceparent: str | None
    ) -> RequestContext:
        """A request arrived: what the observers read of it that the steps do not record.

        Its trace: with tracing on, the client's ``traceparent`` or a new trace; with tracing
        off, the client's trace id is still recorded and its ``traceparent`` sent upstream."""
        ctx.observer = self.observer
        ctx.method = method
        ctx.route = route
        if self.tracing is not None:
            self.tracing.begin(ctx, traceparent)
        elif traceparent is not None and (parent := parse_traceparent(traceparent)) is not None:
            ctx.trace_id = f"{parent[0]:032x}"
            OUTBOUND_TRACEPARENT.set(traceparent.strip().lower())
        return ctx

    def watch(
        self,
        breaker: Breaker | None = None,
        writer: AuditWriter | None = None,
        reviews: ReviewStore | None = None,
        limits: Limits | None = None,
    ) -> None:
        if self.sampler is not None:
            if breaker is not None:
                self.sampler.watch_breaker(breaker)
            if writer is not None:
                self.sampler.watch_audit(writer)
            if reviews is not None:
                self.sampler.watch_reviews(reviews)
            if limits is not None:
                self.sampler.watch_limits(limits)

    def committed(self, seconds: float) -> None:
        """An audit batch committed (AuditWriter's ``on_commit``)."""
        if self.metrics is not None:
            self.metrics.audit_commit_seconds.observe((), seconds)

    async def start(self) -> None:
        if self.sampler is not None:
            self.sampler.start()

    async def stop(self) -> None:
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.close)
        if self.sampler is not None:
            await self.sampler.stop()
        if self.metrics is not None:
            self.metrics.process_exit()


def build_observe(
    config: GatewayConfig,
    registry: PolicyRegistry,
    authenticator: Authenticator,
    environ: Mapping[str, str],
) -> Observe:
    observe = config.observe
    labels = Labels(registry, config.models, observe.metrics.extra_workflows)
    metrics = Metrics() if observe.metrics.enabled else None
    access = AccessLog(labels, observe.access_log.level) if observe.access_log.enabled else None
    finishers: list[Finisher] = []
    tracing = None
    if observe.tracing.enabled:
        providers = {n: config.providers[m.provider].type for n, m in config.models.items()}
        tracing = Tracing(observe.tracing, labels, metrics, providers, environ)
        finishers.append(tracing.finish)
    key = fingerprint_key(environ, observe.fingerprint_key_env)
    fingerprints = Fingerprints(key, labels, metrics, access)
    drift = None
    if observe.drift.enabled and metrics is not None:
        drift = Drift(observe.drift, labels, metrics)
    observer = None
    if metrics is not None or access is not None or finishers:
        observer = Observer(
            labels,
            metrics,
            access,
            config.models,
            finishers,
            on_forward=fingerprints.take,
            drift=drift,
        )
    if metrics is None:
        return Observe(observer, None, None, tracing=tracing)
    sampler = Sampler(metrics, registry, config.models)
    if drift is not None:
        sampler.watch_drift(drift)
    out = Observe(observer, metrics, sampler, tracing=tracing)
    if observe.metrics.expose == "port":
        out.port = serve_metrics_port(metrics, observe.metrics)
    else:
        out.routes.append(
            metrics_route(metrics, observe.metrics, authenticator, config.auth.admin_role)
        )
    return out
