"""Counter names: whose traffic a rule counts, and the store key of each counter.

Every key one decision reads or writes (its rate and budget counters, its settlement marker)
starts with one hash tag, so one script can check and update them all in one Redis Cluster
slot, while different workflows spread over the slots:

- ``{PREFIX:lim:WORKFLOW}`` for a workflow whose rules all count within it (``per`` user,
  key, team, role, workflow);
- ``{PREFIX:lim}``, the gateway-wide slot, for a workflow with a ``per: global`` rule: that
  counter is shared by every such workflow, so their counters all sit where it does.
"""

from __future__ import annotations

from gateway.auth.principal import Principal
from gateway.limits.plan import LimitPlan
from gateway.limits.spec import Per
from gateway.stores.redis import namespace

__all__ = ["budget_key", "rate_key", "settled_key", "slot_tag", "subjects"]

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


def slot_tag(prefix: str, workflow: str, plan: LimitPlan) -> str:
    """The hash tag of every counter a request to ``workflow`` touches.

    >>> from gateway.limits.spec import LimitsPolicy, RateRule
    >>> from gateway.limits.plan import compile_limits
    >>> def plan(per):
    ...     return compile_limits(LimitsPolicy(rate=[RateRule(per=per, requests_per_minute=9)]))
    >>> slot_tag("gw", "support", plan("user")), slot_tag("gw", "support", plan("global"))
    ('{gw:lim:support}', '{gw:lim}')
    """
    tag = namespace(prefix, "lim")
    if any(r.per == "global" for r in plan.rates) or any(b.per == "global" for b in plan.budgets):
        return f"{{{tag}}}"
    return f"{{{tag}:{workflow}}}"


def _scope(workflow: str, per: Per) -> str:
    return "*" if per == "global" else workflow


def rate_key(tag: str, workflow: str, metric: str, per: Per, value: str) -> str:
    return f"{tag}:{_scope(workflow, per)}:{metric}:{per}:{value}"


def budget_key(tag: str, workflow: str, period: str, ident: str, per: Per, value: str) -> str:
    return f"{tag}:{_scope(workflow, per)}:usd:{period}:{ident}:{per}:{value}"


def settled_key(tag: str, request_id: str) -> str:
    """The marker that makes a request's settlement happen once, however often it is sent;
    in the slot of the counters it settles, so the settle script holds them all."""
    return f"{tag}:settled:{request_id}"
