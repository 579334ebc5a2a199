"""Each review action as its own audit record, on the same hash chain as the requests, so
``gateway audit verify`` covers who claimed, decided and delivered what, and when.

The record's ``subject`` and ``roles`` are the reviewer's; its ``review_action`` names the
item, the action and the verdict. The reviewer's note stays out (it is free text): only its
SHA-256 is kept, so a note shown elsewhere can be matched to the decision.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from gateway.audit.record import AuditRecord
from gateway.auth.principal import Principal
from gateway.errors import Reason
from gateway.review.store import Item

__all__ = ["action_record"]


def action_record(
    item: Item,
    actor: Principal | None,
    reason: Reason,
    action: str,
    **details: Any,
) -> AuditRecord:
    note = details.pop("note", None)
    if note:
        details["note_sha256"] = hashlib.sha256(note.encode()).hexdigest()
    return AuditRecord(
        request_id=f"review-{item.id}-{action}-{secrets.token_hex(4)}",
        time=round(time.time(), 6),
        endpoint="review",
        workflow=item.workflow,
        policy_version=item.policy_version,
        mode=None,
        subject=actor.subject if actor else None,
        roles=sorted(actor.roles) if actor else [],
        team=actor.team if actor else None,
        key_id=actor.key_id if actor else None,
        auth_method=actor.method if actor else None,
        model_requested=None,
        model_used=None,
        fallback_used=False,
        decision="review",
        reasons=[reason.code],
        status=reason.status,
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
        review_action={
            "review_id": item.id,
            "request_id": item.request_id,
            "action": action,
            **details,
        },
    )
