"""Counter names: whose traffic a rule counts, and the store key of each counter.

Every counter's key starts with a hash tag that puts it in the Redis Cluster slot of its
scope, so counters spread over the slots by workflow and by subject:

- ``{PREFIX:lim}`` for a ``per: global`` counter (shared by every workflow naming it);
- ``{PREFIX:lim:WORKFLOW}`` for a ``per: workflow`` counter;
- ``{PREFIX:lim:WORKFLOW:PER:DIGEST}`` for a caller's counter (``per`` user, key, team or
  role), DIGEST a short hash of the value, so any subject (even one holding ``}``) makes a
  well-formed tag and each subject of a busy workflow lands in a slot of its own.

A request whose counters all share one tag is checked by one script; one whose counters span
tags is reserved slot by slot (gateway/limits/redis.py).
"""

from __future__ import annotations

import hashlib

from gateway.auth.principal import Principal
from gateway.limits.spec import Per
from gateway.stores.redis import namespace

__all__ = [
    "budget_key",
    "counter_tag",
    "rate_key",
    "settled_key",
    "subjects",
    "tag_of",
    "tag_pattern",
    "workflow_tag",
]

_NONE = "-"  # the counter of callers without a team
_CALLERS: frozenset[Per] = frozenset({"user", "key", "team", "role"})


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


def _digest(value: str) -> str:
    return hashlib.blake2b(value.encode(), digest_size=4).hexdigest()


def workflow_tag(prefix: str, workflow: str) -> str:
    """The hash tag of ``workflow``'s own counters (and of its settlement markers)."""
    return f"{{{namespace(prefix, 'lim')}:{workflow}}}"


def counter_tag(prefix: str, workflow: str, per: Per, value: str) -> str:
    """The hash tag of one counter.

    >>> counter_tag("gw", "support", "global", "*"), counter_tag("gw", "support", "workflow", "*")
    ('{gw:lim}', '{gw:lim:support}')
    >>> counter_tag("gw", "support", "user", "alice")
    '{gw:lim:support:user:6dcf3c59}'
    """
    if per == "global":
        return f"{{{namespace(prefix, 'lim')}}}"
    if per == "workflow":
        return workflow_tag(prefix, workflow)
    return f"{{{namespace(prefix, 'lim')}:{workflow}:{per}:{_digest(value)}}}"


def tag_pattern(prefix: str, workflow: str, per: Per) -> str:
    """A glob matching the tag of every counter of ``per`` in ``workflow`` (admin scans)."""
    if per in _CALLERS:
        return f"{{{namespace(prefix, 'lim')}:{workflow}:{per}:*}}"
    return counter_tag(prefix, workflow, per, "*")


def tag_of(key: str) -> str:
    """The hash tag a key starts with, braces included (every limits key starts with one)."""
    return key[: key.index("}") + 1]


def _scope(workflow: str, per: Per) -> str:
    return "*" if per == "global" else workflow


def rate_key(tag: str, workflow: str, metric: str, per: Per, value: str) -> str:
    return f"{tag}:{_scope(workflow, per)}:{metric}:{per}:{value}"


def budget_key(tag: str, workflow: str, period: str, ident: str, per: Per, value: str) -> str:
    return f"{tag}:{_scope(workflow, per)}:usd:{period}:{ident}:{per}:{value}"


def settled_key(tag: str, request_id: str) -> str:
    """The marker that makes a request's settlement happen once, however often it is sent.
    A store whose counters span slots writes it in each slot it settles (same name after
    the tag), so each slot's settle script holds its own marker."""
    return f"{tag}:settled:{request_id}"
