"""Each review action as its own audit record, on the same hash chain as the requests, so
``gateway audit verify`` covers who claimed, decided and delivered what, and when.

The record's ``subject`` and ``roles`` are the reviewer's; its ``review_action`` names the
item, the action and the verdict. The reviewer's note stays out (it is free text): only its
SHA-256 is kept, so a note shown elsewhere can be matched to the decision.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.audit.record import AuditRecord, event_record
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
    return event_record(
        "review",
        f"{item.id}-{action}",
        item.workflow,
        item.policy_version,
        actor,
        reason,
        review_action={
            "review_id": item.id,
            "request_id": item.request_id,
            "action": action,
            **details,
        },
    )
