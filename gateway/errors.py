"""One error type and the catalogue of reason codes.

A reason code is the stable, dotted name of why the gateway decided what it did. It appears in
the error body, the ``x-gateway-decision`` header and the audit record, so clients and
operators can match on it; the message is the only text written for the client. A reason
names the fallback ``trigger`` it sets off, if any (a policy's ``fallback.on``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["REASONS", "GatewayError", "Reason", "Trigger"]

# What may set a policy's fallback off (``fallback.on``).
Trigger = Literal[
    "rate_limited",
    "budget_exhausted",
    "upstream_error",
    "upstream_timeout",
    "circuit_open",
    "low_confidence",
    "schema_invalid",
    "blocked",
]


@dataclass(frozen=True, slots=True)
class Reason:
    """A stable reason code with the HTTP status and client-safe message that go with it.

    ``trigger``: the fallback trigger it sets off. None: it never sets a fallback off, the
    client must see it (a refused request such as ``access.*`` or ``upstream.rejected``, or a
    gateway fault such as ``upstream.auth_failed``, which a canned answer would hide).
    """

    code: str
    status: int
    message: str
    trigger: Trigger | None = None


REASONS: dict[str, Reason] = {}


def _reason(code: str, status: int, message: str, trigger: Trigger | None = None) -> Reason:
    if code in REASONS:  # one code, one meaning: a second definition is a mistake
        raise ValueError(f"reason code {code} is defined twice")
    reason = Reason(code, status, message, trigger)
    REASONS[code] = reason
    return reason


AUTH_MISSING_KEY = _reason(
    "auth.missing_key", 401, "Missing credentials: send 'Authorization: Bearer KEY' or 'x-api-key'."
)
# Every credential failure reads the same to the client, so the message is no oracle; the
# code says which check failed, for the caller's operator and the audit trail.
_INVALID = "Invalid credentials."
AUTH_INVALID_KEY = _reason("auth.invalid_key", 401, _INVALID)
AUTH_REVOKED = _reason("auth.revoked", 401, _INVALID)
AUTH_EXPIRED = _reason("auth.expired", 401, _INVALID)
AUTH_NOT_YET_VALID = _reason("auth.not_yet_valid", 401, _INVALID)
AUTH_MALFORMED = _reason("auth.malformed", 401, _INVALID)
AUTH_ALG_NOT_ALLOWED = _reason("auth.alg_not_allowed", 401, _INVALID)
AUTH_BAD_SIGNATURE = _reason("auth.bad_signature", 401, _INVALID)
AUTH_BAD_ISSUER = _reason("auth.bad_issuer", 401, _INVALID)
AUTH_BAD_AUDIENCE = _reason("auth.bad_audience", 401, _INVALID)
AUTH_MISSING_CLAIM = _reason("auth.missing_claim", 401, _INVALID)
AUTH_INVALID_CLAIMS = _reason("auth.invalid_claims", 401, _INVALID)
AUTH_UNKNOWN_KID = _reason("auth.unknown_kid", 401, _INVALID)
AUTH_JWKS_UNAVAILABLE = _reason("auth.jwks_unavailable", 401, _INVALID)
POLICY_UNKNOWN_WORKFLOW = _reason("policy.unknown_workflow", 404, "Unknown workflow.")
POLICY_MISSING_WORKFLOW = _reason(
    "policy.missing_workflow",
    400,
    "No workflow named: call /w/{workflow}/v1/... or send an 'X-Workflow' header.",
)
# A paused workflow (``mode: paused`` or ``gateway workflow pause``): the fallback message if
# the policy has one, else this, with ``retry-after`` (docs/policy-lifecycle.md#pause).
POLICY_PAUSED = _reason(
    "policy.paused", 503, "This workflow is paused by its operators; try again later."
)
# Rollout events, each an audit record of its own (gateway/rollout/events.py).
ROLLOUT_PAUSED = _reason("rollout.paused", 200, "An operator paused the workflow.")
ROLLOUT_RESUMED = _reason("rollout.resumed", 200, "An operator resumed the workflow.")
ROLLOUT_ABORTED = _reason(
    "rollout.aborted", 200, "The canary crossed an abort threshold and was dropped to 0%."
)
ROLLOUT_STORE_UNAVAILABLE = _reason(
    "rollout.store_unavailable", 503, "The rollout state could not be read or written."
)
ACCESS_ROLE_DENIED = _reason(
    "access.role_denied", 403, "Your roles do not allow calling this workflow."
)
ACCESS_SUBJECT_DENIED = _reason(
    "access.subject_denied", 403, "This workflow does not admit your identity."
)
ACCESS_TEAM_DENIED = _reason("access.team_denied", 403, "This workflow does not admit your team.")
ACCESS_ENDPOINT_DENIED = _reason(
    "access.endpoint_denied", 403, "This workflow does not allow this endpoint."
)
ACCESS_TOOL_DENIED = _reason("access.tool_denied", 403, "This workflow does not allow tools.")
ACCESS_STREAMING_DENIED = _reason(
    "access.streaming_denied", 403, "This workflow does not allow streaming."
)
ACCESS_ADMIN_REQUIRED = _reason(
    "access.admin_required", 403, "This route needs the gateway's admin role."
)
ACCESS_MODEL_DENIED = _reason(
    "access.model_denied", 403, "This workflow does not allow the requested model."
)
ACCESS_TOKENS_EXCEEDED = _reason(
    "access.max_tokens_exceeded", 400, "The requested max tokens exceed this workflow's limit."
)
# Not a refusal: the request went on with its max tokens lowered to the ceiling.
ACCESS_TOKENS_CLAMPED = _reason(
    "access.max_tokens_clamped", 200, "max tokens lowered to this workflow's limit."
)
REQUEST_INVALID_JSON = _reason("request.invalid_json", 400, "The request body is not valid JSON.")
REQUEST_INVALID = _reason("request.invalid", 400, "The request body is invalid.")
REQUEST_INVALID_ENCODING = _reason(
    "request.invalid_encoding",
    400,
    "The request body must be JSON in UTF-8, without a byte order mark.",
)
REQUEST_TOO_LARGE = _reason("request.too_large", 413, "The request body is too large.")
# Bounds on what one client may send (gateway.yaml ``server``, docs/configuration.md#server).
REQUEST_TOO_DEEP = _reason("request.too_deep", 400, "The request body is nested too deeply.")
REQUEST_TOO_MANY_MESSAGES = _reason(
    "request.too_many_messages", 400, "The request has too many messages."
)
REQUEST_TOO_MANY_PARTS = _reason(
    "request.too_many_parts", 400, "The request has too many content parts."
)
REQUEST_TOO_MANY_TOOLS = _reason("request.too_many_tools", 400, "The request has too many tools.")
REQUEST_STRING_TOO_LONG = _reason(
    "request.string_too_long", 400, "A string in the request body is too long."
)
# Answered by the HTTP protocol itself (gateway/protocol.py): no request reaches the steps.
REQUEST_HEADER_TOO_LARGE = _reason(
    "request.header_too_large", 431, "The request's headers are too large."
)
REQUEST_HEAD_TIMEOUT = _reason(
    "request.head_timeout", 408, "The request's headers were not received in time."
)
REQUEST_BODY_TIMEOUT = _reason(
    "request.body_timeout", 408, "The request body was not received in time."
)
REQUEST_UNKNOWN_ROUTE = _reason("request.unknown_route", 404, "Unknown route.")
REQUEST_METHOD_NOT_ALLOWED = _reason("request.method_not_allowed", 405, "Method not allowed.")
# GET /v1/models/{id} for a model this caller may not use (or that does not exist).
REQUEST_UNKNOWN_MODEL = _reason("request.unknown_model", 404, "No such model for this caller.")
REQUEST_WRONG_API = _reason(
    "request.model_api_mismatch",
    400,
    "The requested model is not served through this API.",
)
# A request that cannot be said in the API of the model it goes to (cross-provider fallback).
TRANSLATE_UNSUPPORTED = _reason(
    "translate.unsupported", 400, "The request uses a feature the target model's API lacks."
)
UPSTREAM_TIMEOUT = _reason(
    "upstream.timeout",
    504,
    "The model provider did not answer in time.",
    trigger="upstream_timeout",
)
UPSTREAM_UNAVAILABLE = _reason(
    "upstream.unavailable",
    502,
    "The model provider could not be reached.",
    trigger="upstream_error",
)
UPSTREAM_ERROR = _reason(
    "upstream.error", 502, "The model provider failed to answer.", trigger="upstream_error"
)
UPSTREAM_RATE_LIMITED = _reason(
    "upstream.rate_limited",
    429,
    "The model provider is rate limiting this gateway.",
    trigger="rate_limited",
)
UPSTREAM_REJECTED = _reason("upstream.rejected", 400, "The model provider rejected the request.")
UPSTREAM_AUTH = _reason(
    "upstream.auth_failed", 502, "The gateway's credentials for the model provider were refused."
)
UPSTREAM_BROKEN_STREAM = _reason(
    "upstream.broken_stream",
    502,
    "The model provider's stream ended unexpectedly.",
    trigger="upstream_error",
)
# Bounds on what one provider answer may make the gateway hold or keep open (``upstream``).
UPSTREAM_TOO_LARGE = _reason(
    "upstream.too_large",
    502,
    "The model provider's answer was too large.",
    trigger="upstream_error",
)
UPSTREAM_STREAM_TIMEOUT = _reason(
    "upstream.stream_timeout",
    504,
    "The model provider's stream ran too long or stalled.",
    trigger="upstream_timeout",
)
UPSTREAM_CIRCUIT_OPEN = _reason(
    "upstream.circuit_open",
    503,
    "The model provider is failing; the gateway is not sending it requests for a while.",
    trigger="circuit_open",
)
# An answer that failed the policy's quality checks (and no fallback answered instead).
_UNUSABLE = "The model's answer did not pass this workflow's quality checks."
QUALITY_LOW_CONFIDENCE = _reason("quality.low_confidence", 502, _UNUSABLE, trigger="low_confidence")
QUALITY_SCHEMA_INVALID = _reason("quality.schema_invalid", 502, _UNUSABLE, trigger="schema_invalid")
QUALITY_PATTERN_FAILED = _reason("quality.pattern_failed", 502, _UNUSABLE, trigger="schema_invalid")
QUALITY_REFUSAL = _reason("quality.refusal", 502, _UNUSABLE, trigger="low_confidence")
# Not refusals: noted in the decision list and the audit record.
QUALITY_UNCHECKED = _reason("quality.unchecked", 200, "The answer was relayed unchecked.")
FALLBACK_REVIEW = _reason("fallback.review", 200, "The request was flagged for manual review.")
BOUNDARY_MASKED = _reason("boundary.masked", 200, "Data was masked on its way out or back.")
BOUNDARY_WOULD_BLOCK = _reason("boundary.would_block", 200, "Shadow mode: this would be blocked.")
BOUNDARY_WOULD_MASK = _reason("boundary.would_mask", 200, "Shadow mode: this would be masked.")
BOUNDARY_BLOCKED = _reason(
    "boundary.blocked_entity",
    403,
    "The request contains data this workflow may not send.",
    trigger="blocked",
)
BOUNDARY_BLOCKED_OUTPUT = _reason(
    "boundary.blocked_output",
    403,
    "The answer contained data this workflow may not return.",
    trigger="blocked",
)
BOUNDARY_IMAGE = _reason(
    "boundary.image_blocked", 403, "This workflow does not accept images.", trigger="blocked"
)
BOUNDARY_UNREADABLE = _reason(
    "boundary.unreadable_content",
    403,
    "The request contains content the gateway cannot inspect (files, audio, documents).",
    trigger="blocked",
)
# ``data.on_uninspectable: block``: token ids, base64 of an unknown type, a block with no text.
BOUNDARY_UNINSPECTABLE = _reason(
    "boundary.uninspectable",
    403,
    "The request contains data the gateway cannot inspect.",
    trigger="blocked",
)
# A JSON document held in a string (tool-call arguments) that names a key twice: parsers
# disagree on which copy counts, so the one inspected might not be the one the model reads.
BOUNDARY_AMBIGUOUS_JSON = _reason(
    "boundary.ambiguous_json",
    400,
    "The request holds a JSON document with a duplicate key (tool-call arguments).",
)
# Thinking blocks are signed by the provider: they cannot be masked, only refused.
BOUNDARY_THINKING = _reason(
    "boundary.thinking_refused",
    403,
    "The request's thinking blocks hold data this workflow may not send, and a signed block"
    " cannot be changed.",
    trigger="blocked",
)
BOUNDARY_DETECTOR = _reason(
    "boundary.detector_error", 503, "The gateway could not inspect the data in this request."
)
BOUNDARY_VAULT = _reason(
    "boundary.vault_unavailable", 503, "The gateway's token vault is unavailable."
)
BOUNDARY_ANSWER_SHAPE = _reason(
    "boundary.unknown_answer_shape",
    502,
    "The model provider's answer has a shape the gateway cannot inspect.",
    trigger="upstream_error",
)
# Text built to be slow to scan (dense look-alikes, long runs every rule reads): refused once
# its scan passes ``server.max_scan_cpu_s`` rather than hold a core (boundary/pace.py).
BOUNDARY_TOO_COSTLY = _reason(
    "boundary.too_costly",
    413,
    "The request's text would take the gateway too long to inspect.",
)
BOUNDARY_ANSWER_TOO_COSTLY = _reason(
    "boundary.answer_too_costly",
    502,
    "The model provider's answer would take the gateway too long to inspect.",
    trigger="upstream_error",
)
# The request asks the provider for state it kept (previous_response_id), which the
# workflow's ``retention.upstream_store: false`` forbids it to keep.
RETENTION_PROVIDER_STATE = _reason(
    "retention.provider_state",
    400,
    "This workflow forbids provider storage: send the conversation history in the request.",
)
LIMITS_RATE_EXCEEDED = _reason(
    "limits.rate_exceeded",
    429,
    "Rate limit reached for this workflow; retry later.",
    trigger="rate_limited",
)
LIMITS_BUDGET_EXHAUSTED = _reason(
    "limits.budget_exhausted",
    429,
    "This workflow's cost budget is spent for the period.",
    trigger="budget_exhausted",
)
LIMITS_STORE_UNAVAILABLE = _reason(
    "limits.store_unavailable", 503, "The gateway could not check its rate limits."
)
# budget_clamp: not a refusal; max tokens lowered to what the remaining budget pays for.
LIMITS_TOKENS_CLAMPED = _reason(
    "limits.max_tokens_clamped", 200, "max tokens lowered to what the remaining budget pays for."
)
# on_failure: block, and neither the audit sink nor its spool could take the record.
AUDIT_UNAVAILABLE = _reason(
    "audit.unavailable", 503, "The request could not be recorded, so its answer was withheld."
)
# The review queue (docs/console-and-review.md). ``review.held`` and ``review.flagged`` are
# decisions on a request; the others name the actions recorded in the audit chain, and the
# refusals of the review and console routes.
REVIEW_HELD = _reason(
    "review.held", 202, "The answer is held for review: poll its review id for the outcome."
)
REVIEW_FLAGGED = _reason("review.flagged", 200, "The request was queued for review.")
REVIEW_CLAIMED = _reason("review.claimed", 200, "A reviewer claimed the item.")
REVIEW_APPROVED = _reason("review.approved", 200, "A reviewer approved the item.")
REVIEW_EDITED = _reason("review.edited", 200, "A reviewer approved the item with their answer.")
REVIEW_REJECTED = _reason("review.rejected", 200, "A reviewer rejected the item.")
REVIEW_DELIVERED = _reason("review.delivered", 200, "The decision was sent to the webhook.")
REVIEW_UNDELIVERED = _reason(
    "review.undelivered", 502, "The webhook did not take the decision; it will be retried."
)
REVIEW_NOT_FOUND = _reason("review.not_found", 404, "Unknown review.")
REVIEW_CONFLICT = _reason(
    "review.conflict", 409, "The item is decided, or claimed by another reviewer: claim it first."
)
REVIEW_NOT_ASSIGNED = _reason(
    "review.not_assigned", 403, "This item is assigned to other reviewers."
)
REVIEW_REVEALED = _reason(
    "review.revealed", 200, "A reviewer granted review.reveal read an item's tokenized values."
)
REVIEW_REVEAL_DENIED = _reason(
    "review.reveal_denied",
    403,
    "Revealing tokenized values needs a grant in the workflow's policy (review.reveal).",
)
REVIEW_STORE_UNAVAILABLE = _reason(
    "review.store_unavailable", 503, "The review store is unavailable."
)
ACCESS_CONSOLE_ROLE = _reason(
    "access.console_role_required", 403, "This page needs a console role you do not hold."
)
CONSOLE_SIGN_IN = _reason("console.sign_in_required", 401, "Sign in to the console first.")
# The audit records of console sessions (docs/console-and-review.md).
CONSOLE_SIGNED_IN = _reason("console.signed_in", 200, "Signed in to the console.")
CONSOLE_SIGN_IN_REFUSED = _reason(
    "console.sign_in_refused", 401, "A console sign-in was refused: the credential, or its roles."
)
CONSOLE_SIGNED_OUT = _reason("console.signed_out", 200, "Signed out of the console.")
CONSOLE_KEY_CREATED = _reason("console.key_created", 200, "A gateway key was created.")
CONSOLE_KEY_REVOKED = _reason("console.key_revoked", 200, "A gateway key was revoked.")
CONSOLE_CSRF = _reason(
    "console.csrf_failed", 403, "The form's CSRF token is missing or wrong: reload the page."
)
INTERNAL = _reason("gateway.internal_error", 500, "Internal gateway error.")


class GatewayError(Exception):
    """A refusal or failure to report to the client under a reason code.

    ``message`` overrides the reason's text and must be written for the client: it leaves the
    process. The chained cause and ``detail`` stay inside (logs, audit).
    """

    def __init__(
        self,
        reason: Reason,
        message: str | None = None,
        *,
        status: int | None = None,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(reason.code)
        self.reason = reason
        self.message = message or reason.message
        self.status = status or reason.status
        self.detail = detail
        self.headers = headers or {}
        # An upstream's own error body in the client's wire format, relayed as it came.
        self.body = body

    def __str__(self) -> str:
        return f"{self.reason.code}: {self.detail or self.message}"
