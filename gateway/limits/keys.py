"""Counter names: whose traffic a rule counts, and the store key of each counter.

Every key starts with the hash tag ``{PREFIX:lim}``, the limits' namespace by the one key rule
(gateway/stores/redis.py): one Redis Cluster slot holds them all, so one script can check a
request's per-user, per-workflow and gateway-wide counters.
"""

from __future__ import annotations

from gateway.auth.principal import Principal
from gateway.limits.spec import Per
from gateway.stores.redis import namespace

__all__ = ["budget_key", "rate_key", "settled_key", "subjects"]

_NONE = "-"  # the counter of callers without a team


def subjects(principal: Principal, admitted_roles: frozenset[str]) -> dict[Per, tuple[str, ...]]:
    """The counter values each ``per`` means for this caller. ``role``: each of the caller's
    roles this workflow admits, so each role's limit holds for everyone holding it."""
    key = principal.key_id or f"{principal.method}:{principal.subject}"
    return {
        "user": (principal.subject,),
        "key": (key,),
        "team": (principal.team or _NONE,),
        "role": tuple(sorted(principal.roles & admitted_roles)),
        "workflow": ("*",),
        "global": ("*",),
    }


def _scope(workflow: str, per: Per) -> str:
    return "*" if per == "global" else workflow


def rate_key(prefix: str, workflow: str, metric: str, per: Per, value: str) -> str:
    return f"{{{namespace(prefix, 'lim')}}}:{_scope(workflow, per)}:{metric}:{per}:{value}"


def budget_key(prefix: str, workflow: str, period: str, ident: str, per: Per, value: str) -> str:
    tag = namespace(prefix, "lim")
    return f"{{{tag}}}:{_scope(workflow, per)}:usd:{period}:{ident}:{per}:{value}"


def settled_key(prefix: str, request_id: str) -> str:
    """The marker that makes a request's settlement happen once, however often it is sent."""
    return f"{{{namespace(prefix, 'lim')}}}:settled:{request_id}"
