"""The audit trail: one hash-chained record per request, never a raw value (docs/audit.md)."""

from __future__ import annotations

from gateway.audit.record import AuditRecord, build_record
from gateway.audit.sink import AuditSink, AuditStore, Query, SinkError
from gateway.audit.stores import open_store
from gateway.audit.trail import AuditTrail

__all__ = [
    "AuditRecord",
    "AuditSink",
    "AuditStore",
    "AuditTrail",
    "Query",
    "SinkError",
    "build_record",
    "open_store",
]
