"""Open the configured audit store: PostgreSQL when ``stores.audit_url`` is set, else the
SQLite file ``audit.sqlite_path``; the chain keyed by ``audit.key_env`` when it is set."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gateway.audit.chain import Chain
from gateway.audit.sink import AuditStore
from gateway.audit.sqlite import SqliteSink
from gateway.config import GatewayConfig

__all__ = ["open_store"]

log = logging.getLogger("gateway.audit")


def open_store(config: GatewayConfig, env: Mapping[str, str], serving: bool = False) -> AuditStore:
    """The store, its chain keyed from ``env``; ``serving``: the gateway writes to it, so an
    unkeyed chain is worth a warning (read-only commands stay quiet)."""
    key = env.get(config.audit.key_env)
    if not key and serving:
        log.warning(
            "audit: %s is not set, the hash chain is unkeyed (edits are still detected, "
            "but whoever can write the database could rebuild the chain)",
            config.audit.key_env,
        )
    chain = Chain(key.encode() if key else None)
    if config.stores.audit_url:
        from gateway.audit.postgres import PostgresSink  # asyncpg loads only for PostgreSQL

        return PostgresSink(config.stores.audit_url, config.audit.pg_schema, chain)
    return SqliteSink(config.path(config.audit.sqlite_path), chain)
