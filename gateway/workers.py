"""Several worker processes on one port (``gateway serve --workers N``): what each guarantee
needs when the processes share no memory.

- Rate limits, budgets and the token vault kept in process memory would be counted and stored
  once per worker, so N workers would admit N times a limit and miss each other's tokens.
  With N > 1 and no ``stores.redis_url`` a policy set that uses either refuses to start, and a
  reload that brings one in later is refused request by request (fail closed, whatever the
  policy's ``fail_open``), never limited per process.
- The circuit breaker stays per worker, as ``breaker.shared: false`` keeps it per instance.
- The SQLite audit trail stays one chain: each write takes the writers' ``flock`` and
  SQLite's write lock (``BEGIN IMMEDIATE``) before it reads the chain head; each worker spools
  to its own file.
- Policies, keys and JWKS are loaded and hot-reloaded by each worker on its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from gateway.policy.compile import CompiledPolicy

__all__ = ["FIX", "parse_workers", "shared_state_problems"]

# The fix named in every refusal (gateway/limits/service.py and boundary/service.py too).
FIX = "set stores.redis_url (or serve with --workers 1)"


def parse_workers(value: str) -> int:
    """``N`` (at least 1) or ``auto``: the CPUs this process may run on (its affinity mask,
    which container CPU sets narrow; a CFS quota is not read)."""
    if value == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    workers = int(value)
    if workers < 1:
        raise ValueError("at least 1")
    return workers


def shared_state_problems(policies: Iterable[CompiledPolicy]) -> list[str]:
    """Why these policies cannot run in several workers without Redis (empty: they can)."""
    problems: list[str] = []
    for policy in policies:
        uses = []
        if policy.limits is not None:
            uses.append("rate limits or budgets")
        if policy.data is not None and "tokenize" in policy.data.actions.values():
            uses.append("tokenize (the token vault)")
        if uses:
            problems.append(f"{policy.path}: workflow '{policy.name}' uses {' and '.join(uses)}")
    return problems
