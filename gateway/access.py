"""Who may call a workflow, through which endpoints, with which models, tools and token ceilings.

Two checks, split by what they need: ``check_caller`` runs before the body is read, so a
caller the workflow does not admit never has its body parsed; ``check_request`` runs on the
parsed request and may lower its max tokens to the workflow's ceiling.
"""

from __future__ import annotations

from gateway import errors
from gateway.auth.principal import Principal
from gateway.errors import GatewayError, Reason
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import AccessRules
from gateway.review.tools import offered_tools
from gateway.surfaces import surface_of

__all__ = ["allowed_models", "check_caller", "check_request"]


def check_caller(rules: AccessRules, principal: Principal, endpoint: str) -> None:
    """Roles (any one admits), then subjects and teams when listed, then the endpoint.

    Roles come first so a caller the workflow does not admit learns nothing more of it.
    """
    if principal.roles.isdisjoint(rules.roles):
        raise GatewayError(errors.ACCESS_ROLE_DENIED)
    if rules.subjects is not None and principal.subject not in rules.subjects:
        raise GatewayError(errors.ACCESS_SUBJECT_DENIED)
    if rules.teams is not None and principal.team not in rules.teams:
        raise GatewayError(errors.ACCESS_TEAM_DENIED)
    if endpoint not in rules.endpoints:
        raise GatewayError(
            errors.ACCESS_ENDPOINT_DENIED, f"This workflow does not allow the {endpoint} endpoint."
        )


def check_request(rules: AccessRules, request: NormalizedRequest) -> Reason | None:
    """Model, streaming, tools and the output ceiling; returns a reason if the body changed."""
    if request.model not in rules.model_set:
        raise GatewayError(
            errors.ACCESS_MODEL_DENIED,
            f"This workflow does not allow model '{request.model[:64]}' "
            f"(allowed: {', '.join(rules.models)}).",
        )
    if request.stream and not rules.allow_streaming:
        raise GatewayError(errors.ACCESS_STREAMING_DENIED)
    if not rules.allow_tools and request.tools:
        raise GatewayError(errors.ACCESS_TOOL_DENIED)
    if rules.tools is not None and request.tools:
        denied = sorted(offered_tools(request.body) - rules.tools)
        if denied:
            raise GatewayError(
                errors.ACCESS_TOOL_DENIED,
                f"This workflow does not allow the tool '{denied[0][:64]}'.",
            )
    return _hold_ceiling(rules, request)


def allowed_models(rules: AccessRules, endpoint: str) -> tuple[str, ...]:
    """The models a caller already admitted by ``check_caller`` may use through ``endpoint``."""
    return rules.models if endpoint in rules.endpoints else ()


def _hold_ceiling(rules: AccessRules, request: NormalizedRequest) -> Reason | None:
    ceiling = rules.max_output_tokens
    if ceiling is None:
        return None
    surface = surface_of(request)
    asked = surface.output_ceilings(request)
    over = [(f, value) for f, value in asked if value > ceiling]
    if over and not rules.clamp:
        raise GatewayError(
            errors.ACCESS_TOKENS_EXCEEDED,
            f"{over[0][0]} {over[0][1]} exceeds this workflow's limit of {ceiling}.",
        )
    lowered = surface.set_output_ceiling(request, ceiling)
    # A ceiling written where the client set none is not a change the client made.
    return errors.ACCESS_TOKENS_CLAMPED if lowered and asked else None
