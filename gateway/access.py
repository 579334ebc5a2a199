"""Who may call a workflow, with which models and how many output tokens."""

from __future__ import annotations

from gateway import errors
from gateway.auth.principal import Principal
from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy

__all__ = ["check_access", "check_roles"]


def check_roles(policy: CompiledPolicy, principal: Principal) -> None:
    """Any one of the policy's roles admits the caller."""
    if principal.roles.isdisjoint(policy.roles):
        raise GatewayError(errors.ACCESS_ROLE_DENIED)


def check_access(policy: CompiledPolicy, principal: Principal, request: NormalizedRequest) -> None:
    check_roles(policy, principal)
    if request.model not in policy.models:
        allowed = ", ".join(sorted(policy.models))
        raise GatewayError(
            errors.ACCESS_MODEL_DENIED,
            f"This workflow does not allow model '{request.model}' (allowed: {allowed}).",
        )
    ceiling = policy.source.access.max_output_tokens
    if ceiling is not None and request.max_tokens is not None and request.max_tokens > ceiling:
        raise GatewayError(
            errors.ACCESS_TOKENS_EXCEEDED,
            f"max tokens {request.max_tokens} exceed this workflow's limit of {ceiling}.",
        )
