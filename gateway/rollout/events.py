"""Each rollout event (pause, resume, automatic abort) as an audit record of its own, on the
same hash chain as the requests, so ``gateway audit verify`` covers who stopped what and why.

The record's ``subject`` and ``roles`` are the operator's (none for an automatic abort); its
``rollout`` field names the action, the reason the operator gave or the abort's figures.
"""

from __future__ import annotations

from typing import Any

from gateway.audit import record
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
    return record.event_record(
        "rollout",
        f"{workflow}-{action}",
        workflow,
        version,
        actor,
        code,
        rollout={"action": action, **details},
    )
