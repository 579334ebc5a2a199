"""The policy's static answer for a refusal or failure its ``fallback.on`` names."""

from __future__ import annotations

from gateway import errors
from gateway.context import Decision, RequestContext
from gateway.errors import GatewayError
from gateway.fallback.answer import message_body, message_events
from gateway.fallback.triggers import trigger_of
from gateway.steps import Step
from gateway.surfaces import surface_of

__all__ = ["fallback_message"]


def fallback_message(ctx: RequestContext, exc: GatewayError) -> bytes | list[bytes] | None:
    """The message answer in the client's shape (SSE events for a stream), or None when the
    policy has no message for ``exc``. Records the decision and the reason on ``ctx``."""
    policy, request = ctx.policy, ctx.request
    if policy is None or request is None:
        return None
    fallback = policy.source.fallback
    if fallback.message is None:
        return None
    # A paused workflow always answers with its message: no model is asked, so none can fail.
    if exc.reason is not errors.POLICY_PAUSED and trigger_of(exc.reason.code) not in fallback.on:
        return None
    if not surface_of(request).answers_text:  # no text stands in for vectors or a count
        return None
    code = exc.reason.code
    ctx.decisions.append(Decision(Step.FALLBACK, "transform", code))
    ctx.fallback, ctx.fallback_reason = "message", code
    if fallback.review:
        ctx.review = True
        ctx.decisions.append(Decision(Step.FALLBACK, "transform", errors.FALLBACK_REVIEW.code))
    if request.stream:
        return message_events(request, fallback.message)
    return message_body(request, fallback.message)
