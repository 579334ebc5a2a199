"""Label values that are bounded by construction: each comes from a closed set the gateway
knows (loaded workflows, the model catalogue, the reason catalogue, the entity catalogue,
the ``Step`` enumeration), and anything else reads ``other``. A client can send a thousand
made-up model names or workflows; it never creates a series (tests/observe/test_metrics.py).

Never a subject, key, IP, user agent or value: nothing here takes one.
"""

from __future__ import annotations

from collections.abc import Collection

from gateway.boundary.detector import DENY_TERM, detectable_entities
from gateway.errors import REASONS
from gateway.policy.compile import CompiledPolicy
from gateway.policy.models import ENDPOINTS
from gateway.policy.registry import PolicyRegistry

__all__ = ["ACTIONS", "OTHER", "Labels"]

OTHER = "other"
ACTIONS = frozenset({"allow", "mask", "redact", "tokenize", "block"})
_ENDPOINTS = frozenset({*ENDPOINTS, "unknown"})


class Labels:
    """Maps what a request carried to label values from closed sets."""

    def __init__(
        self,
        registry: PolicyRegistry,
        models: Collection[str],
        extra_workflows: Collection[str] = (),
    ) -> None:
        self._registry = registry
        self._models = frozenset(models)
        self._extra = frozenset(extra_workflows)
        self._entities = detectable_entities(True) | {DENY_TERM}

    def workflow(self, name: str | None) -> str:
        if not name:
            return "none"
        if name in self._registry.current.policies or name in self._extra:
            return name
        return OTHER

    def model(self, name: str | None) -> str:
        if not name:
            return "none"
        return name if name in self._models else OTHER

    def candidate_version(self, workflow: str | None) -> str | None:
        """The version of the candidate loaded for ``workflow`` now, if any."""
        candidate = self._registry.current.candidates.get(workflow or "")
        return candidate.version if candidate is not None else None

    @staticmethod
    def endpoint(name: str) -> str:
        return name if name in _ENDPOINTS else OTHER

    @staticmethod
    def reason(code: str | None) -> str:
        if code is None:
            return "none"
        return code if code in REASONS else OTHER

    def entity(self, name: str, policy: CompiledPolicy | None) -> str:
        if name in self._entities:
            return name
        data = policy.source.data if policy is not None else None
        if data is not None and (name in data.entities or any(c.name == name for c in data.custom)):
            return name
        return OTHER

    @staticmethod
    def action(name: str) -> str:
        return name if name in ACTIONS else OTHER
