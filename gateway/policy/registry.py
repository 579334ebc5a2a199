"""The live set of compiled policies, replaced whole so a request sees one consistent set."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateway.policy.compile import CompiledPolicy

__all__ = ["PolicyRegistry"]


class PolicyRegistry:
    """Holds the last good policy set; ``replace`` swaps it in one assignment."""

    def __init__(self, policies: Mapping[str, CompiledPolicy]) -> None:
        self._policies: Mapping[str, CompiledPolicy] = MappingProxyType(dict(policies))

    def get(self, workflow: str) -> CompiledPolicy | None:
        return self._policies.get(workflow)

    def all(self) -> Mapping[str, CompiledPolicy]:
        return self._policies

    def replace(self, policies: Mapping[str, CompiledPolicy]) -> None:
        self._policies = MappingProxyType(dict(policies))
