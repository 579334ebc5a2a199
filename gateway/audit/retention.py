"""Retention: per-workflow purge cutoffs, the periodic purge, and ``upstream_store``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from gateway.audit.sink import AuditStore, PurgeResult, SinkError
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.policy.registry import PolicyRegistry
from gateway.surfaces import surface_of

__all__ = ["ask_no_store", "purge", "purge_forever"]

log = logging.getLogger("gateway.audit")
_DAY = 86400.0


def ask_no_store(policy: CompiledPolicy, request: NormalizedRequest) -> None:
    """``retention.upstream_store: false``: ask the provider not to keep the exchange, where
    the API has a field for it (the surface knows)."""
    if not policy.source.retention.upstream_store:
        surface_of(request).ask_no_store(request)


async def purge(
    store: AuditStore,
    policies: Mapping[str, CompiledPolicy],
    default_days: int,
    *,
    dry_run: bool = False,
    now: float | None = None,
) -> PurgeResult:
    """Purge every record older than its workflow's ``retention.audit_days``."""
    now = time.time() if now is None else now
    cutoffs = {n: now - p.source.retention.audit_days * _DAY for n, p in policies.items()}
    return await store.purge(cutoffs, now - default_days * _DAY, dry_run=dry_run, now=now)


async def purge_forever(
    store: AuditStore, registry: PolicyRegistry, default_days: int, interval_s: float
) -> None:
    """The gateway's periodic purge (the live policies each time); a failure is logged and
    tried again next interval."""
    while True:
        try:
            result = await purge(store, registry.all(), default_days)
            if result.purged:
                log.info(
                    "audit purge: %s; %d folded into a checkpoint", result.purged, result.dropped
                )
        except SinkError as exc:
            log.error("audit purge failed: %s", exc)
        await asyncio.sleep(interval_s)
