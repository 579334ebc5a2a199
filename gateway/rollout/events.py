"""Each rollout event (pause, resume, automatic abort) as an audit record of its own, on the
same hash chain as the requests, so ``gateway audit verify`` covers who stopped what and why.

The record's ``subject`` and ``roles`` are the operator's (none for an automatic abort); its
``rollout`` field names the action, the reason the operator gave or the abort's figures.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from gateway.audit.record import AuditRecord
from gateway.auth.principal import Principal
from gateway.errors import Reason

__all__ = ["event_record"]


def event_record(
    workflow: str,
    version: str | None,
    actor: Principal | None,
    code: Reason,
    action: str,
    **details: Any,
) -> AuditRecord:
    return AuditRecord(
        request_id=f"rollout-{workflow}-{action}-{secrets.token_hex(6)}",
        time=round(time.time(), 6),
        endpoint="rollout",
        workflow=workflow,
        policy_version=version,
        mode=None,
        subject=actor.subject if actor else None,
        roles=sorted(actor.roles) if actor else [],
        team=actor.team if actor else None,
        key_id=actor.key_id if actor else None,
        auth_method=actor.method if actor else None,
        model_requested=None,
        model_used=None,
        fallback_used=False,
        decision="rollout",
        reasons=[code.code],
        status=code.status,
        streamed=False,
        stream_end=None,
        upstream_status=None,
        attempts=0,
        retries=0,
        latency_ms=0.0,
        upstream_ms=None,
        tokens_in=None,
        tokens_out=None,
        reserved_usd=None,
        actual_usd=None,
        upstream_store=None,
        rollout={"action": action, **details},
    )
