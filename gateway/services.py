"""The services of the request path, built once: the pipeline and its steps' services, the
audit writer, the purge task, the authenticator. ``create_app`` (gateway/app.py) and the offline
tools (gateway/tools/offline.py) build the same pipeline through ``build_pipeline``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from gateway.audit import AuditStore, AuditTrail
from gateway.audit.retention import purge_forever
from gateway.audit.spool import Spool
from gateway.audit.writer import AuditWriter
from gateway.auth import Authenticator, KeyStore
from gateway.boundary.service import build_boundary
from gateway.config import GatewayConfig
from gateway.context import StepObserver
from gateway.limits.service import build_limits
from gateway.limits.step import Limits
from gateway.observe.service import Observe
from gateway.pipeline import Pipeline
from gateway.policy import PolicyRegistry
from gateway.review.service import Reviews
from gateway.rollout.service import Rollout
from gateway.stores.shared import SharedRedis
from gateway.upstream import Forwarder, Provider
from gateway.upstream.breaker import build_breaker
from gateway.workers import FIX, shared_state_problems
from gateway.yamlsource import ConfigError, Problem

log = logging.getLogger("gateway.audit")

__all__ = [
    "audit_writer",
    "build_authenticator",
    "build_pipeline",
    "refuse_per_process_state",
    "start_purging",
]


def build_pipeline(
    config: GatewayConfig,
    environ: Mapping[str, str],
    registry: PolicyRegistry,
    authenticator: Authenticator,
    providers: dict[str, Provider],
    trail: AuditTrail,
    limits: Limits | None = None,
    redis: SharedRedis | None = None,
    workers: int = 1,
    reviews: Reviews | None = None,
    observe: Observe | None = None,
    rollout: Rollout | None = None,
) -> Pipeline:
    """The request path's steps and their services, as the server runs them; ``gateway
    policy test`` builds the same pipeline offline (gateway/tools/offline.py), where
    ``redis`` is None and every store lives in memory."""
    boundary = build_boundary(config, environ, redis.vault if redis else None, workers)
    if reviews is not None:
        reviews.connect(boundary, registry)  # tokens and reveals (gateway/review/view.py)
    breaker = build_breaker(config.breaker, redis.breaker if redis else None)
    forwarder = Forwarder(providers, config.models, breaker)
    limits = limits or build_limits(config, redis.limits if redis else None)
    observer: StepObserver | None = None
    if observe is not None:
        observe.watch(breaker=breaker, limits=limits)
        observer = observe.observer
    if rollout is not None:
        observer = rollout.observing(observer)
    return Pipeline(
        authenticator,
        registry,
        forwarder,
        boundary,
        trail=trail,
        limits=limits,
        bounds=config.server,
        reviews=reviews,
        observer=observer,
        rollout=rollout,
    )


def refuse_per_process_state(config: GatewayConfig, registry: PolicyRegistry) -> None:
    current = registry.current
    problems = shared_state_problems([*current.policies.values(), *current.candidates.values()])
    if problems:
        where = str(config.base_dir / "gateway.yaml")
        raise ConfigError(
            [Problem(where, 0, f"{p}: with --workers > 1 it needs shared state: {FIX}")
             for p in problems]
        )  # fmt: skip


def audit_writer(
    config: GatewayConfig, store: AuditStore, workers: int, observe: Observe
) -> AuditWriter:
    audit = config.audit
    folder = config.path(audit.spool_dir)
    return AuditWriter(
        store,
        _spool(folder),
        sync=audit.durability == "sync",
        block=audit.on_failure == "block",
        batch_max=audit.batch_max,
        max_delay_s=audit.max_delay_ms / 1000,
        queue_max=audit.queue_max,
        on_commit=observe.committed if observe.metrics is not None else None,
    )


def _spool(folder: Path) -> Spool:
    """Every process claims its spool file, one worker or several: instances sharing a host
    and a config share the folder too, and two writers of one file lose records (one replays
    and clears it while the other appends; tests/stores/test_fleet.py). A folder that cannot
    be made or locked now gets the plain file: its first append fails, and
    ``audit.on_failure`` decides, as for any spool that cannot be written."""
    try:
        return Spool.claim(folder)
    except OSError as exc:
        log.warning("audit spool folder %s unusable: %s", folder, exc)
        return Spool(folder)


def start_purging(
    config: GatewayConfig, store: AuditStore | None, registry: PolicyRegistry
) -> asyncio.Task[None] | None:
    if store is None or not config.audit.purge_interval_s:
        return None
    return asyncio.create_task(
        purge_forever(store, registry, config.audit.default_days, config.audit.purge_interval_s),
        name="audit-purge",
    )


def build_authenticator(config: GatewayConfig, env: Mapping[str, str]) -> Authenticator:
    keys = KeyStore(config.path(config.auth.api_keys_file))
    jwt = config.auth.jwt
    if jwt is None:
        return Authenticator(keys)
    from gateway.auth.jwt import JwtVerifier, load_static_keys  # pyjwt: only here
    from gateway.auth.keyset import UnusableKey

    try:
        static = load_static_keys(jwt, config.base_dir, env)
    except UnusableKey as exc:
        raise ConfigError([Problem("auth.jwt", 0, str(exc))]) from None
    return Authenticator(keys, JwtVerifier(jwt, static))
