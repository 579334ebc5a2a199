"""``GET /admin/audit``: the audit trail for operators, paginated, with the CLI's filters.

Mounted through ``admin_router``'s ``extra``, so the admin guard covers it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from gateway import errors
from gateway.audit.sink import AuditStore, Query, SinkError
from gateway.errors import GatewayError

__all__ = ["audit_route", "parse_time"]

_MAX_LIMIT = 1000


def parse_time(value: str) -> float:
    """Epoch seconds or ISO 8601 (``2026-11-25``, ``2026-11-25T10:00:00+00:00``); UTC if
    no zone is given."""
    try:
        return float(value)
    except ValueError:
        pass
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def audit_route(store: AuditStore) -> HTTPRouteHandler:
    @get("/audit")
    async def audit(request: Request[Any, Any, Any]) -> Response[bytes]:
        """Records oldest first; ``next`` is the ``after`` of the following page (or null)."""
        params = request.query_params
        try:
            since, until = params.get("since"), params.get("until")
            query = Query(
                workflow=params.get("workflow"),
                decision=params.get("decision"),
                reason=params.get("reason"),
                subject=params.get("subject"),
                entity=params.get("entity"),
                since=parse_time(since) if since else None,
                until=parse_time(until) if until else None,
                after_seq=int(params["after"]) if "after" in params else None,
                limit=max(1, min(int(params.get("limit", 100)), _MAX_LIMIT)),
            )
        except ValueError:
            message = "after/limit: integers; since/until: epoch seconds or ISO 8601."
            raise GatewayError(errors.REQUEST_INVALID, message) from None
        try:
            rows = await store.query(query)
        except SinkError as exc:
            raise GatewayError(
                errors.AUDIT_UNAVAILABLE, "The audit store is unavailable.", detail=str(exc)
            ) from None
        records: list[dict[str, Any]] = []
        for row in rows:
            record = orjson.loads(row.body) if row.body is not None else {}
            records.append({"seq": row.seq, "hash": row.hash, **record})
        more = len(rows) == query.limit
        body = {"records": records, "next": rows[-1].seq if more else None}
        return Response(orjson.dumps(body), media_type="application/json")

    return audit
