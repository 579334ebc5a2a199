"""The audit chain of a store checked as `gateway audit verify` checks it (no key: unkeyed)."""

from __future__ import annotations

from gateway.audit.chain import VerifyReport, verify_rows
from gateway.audit.sink import AuditStore

__all__ = ["verified"]


async def verified(sink: AuditStore) -> VerifyReport:
    """``sink``'s chain verified from its first row to its head; the sink is closed."""
    try:
        return await verify_rows(sink.chain, sink.rows(), None, await sink.head())
    finally:
        await sink.close()
