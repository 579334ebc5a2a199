"""The live set of compiled policies, replaced whole so a request sees one consistent set.

A ``PolicySet`` is immutable. A request takes the current one once, when it resolves its
policy, and keeps the ``CompiledPolicy`` it got: a reload swaps the registry's reference, so
requests in flight finish under the version they started with, and each audit record names
exactly one policy version.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.policy.candidates import as_enforced
from gateway.policy.compile import CompiledPolicy

__all__ = ["PolicyRegistry", "PolicySet", "ReloadError"]

_EMPTY: Mapping[str, CompiledPolicy] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PolicySet:
    """One generation of live policies and their candidates (``W.candidate.yaml``):
    ``candidates`` in their shadow form, ``enforced`` the same candidates as a canary
    enforces them, for those whose ``rollout.percent`` is above 0 (gateway/rollout/assign.py)."""

    policies: Mapping[str, CompiledPolicy]
    candidates: Mapping[str, CompiledPolicy] = field(default_factory=lambda: _EMPTY)
    generation: int = 1
    loaded_at: float = field(default_factory=time.time)
    enforced: Mapping[str, CompiledPolicy] = field(default_factory=lambda: _EMPTY)

    @classmethod
    def of(
        cls,
        policies: Mapping[str, CompiledPolicy],
        candidates: Mapping[str, CompiledPolicy],
        generation: int = 1,
    ) -> PolicySet:
        enforced = {
            name: form for name, c in candidates.items() if (form := as_enforced(c)) is not None
        }
        return cls(
            MappingProxyType(dict(policies)),
            MappingProxyType(dict(candidates)),
            generation,
            enforced=MappingProxyType(enforced),
        )

    @property
    def version(self) -> str:
        """A hash of every live policy's version: equal sets have equal versions."""
        parts = "\n".join(f"{n}={p.version}" for n, p in sorted(self.policies.items()))
        return "set:" + hashlib.sha256(parts.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class ReloadError:
    """Why the last reload of the live set (or of the candidates) was refused."""

    at: float
    problems: tuple[str, ...]  # "file:line: message", as the loader reports them
    candidates: bool = False  # only the candidates were broken; the live set was taken


class PolicyRegistry:
    """Holds the last good policy set; ``replace`` swaps it in one assignment."""

    def __init__(
        self,
        policies: Mapping[str, CompiledPolicy],
        candidates: Mapping[str, CompiledPolicy] | None = None,
    ) -> None:
        self.current = PolicySet.of(policies, candidates or {})
        self.last_error: ReloadError | None = None

    def get(self, workflow: str) -> CompiledPolicy | None:
        return self.current.policies.get(workflow)

    def all(self) -> Mapping[str, CompiledPolicy]:
        return self.current.policies

    def replace(
        self,
        policies: Mapping[str, CompiledPolicy],
        candidates: Mapping[str, CompiledPolicy] | None = None,
    ) -> PolicySet:
        """Make a new generation live; ``candidates`` None keeps the current candidates."""
        old = self.current
        self.current = PolicySet.of(
            policies, old.candidates if candidates is None else candidates, old.generation + 1
        )
        return self.current
