"""Per-workflow policies: schema, loading with file:line errors, compilation, the live set."""

from gateway.policy.compile import CompiledPolicy
from gateway.policy.loader import load_policies
from gateway.policy.models import Policy
from gateway.policy.registry import PolicyRegistry

__all__ = ["CompiledPolicy", "Policy", "PolicyRegistry", "load_policies"]
