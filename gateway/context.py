"""What one request decided and did, filled in step by step, read by the audit trail."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from gateway import errors
from gateway.auth.principal import Principal
from gateway.boundary.record import BoundaryRecord
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.policy.verdict import CandidateVerdict

if TYPE_CHECKING:
    from gateway.limits.step import Grant

__all__ = ["Decision", "Outcome", "RequestContext"]

Outcome = Literal["allow", "transform", "deny", "error"]


@dataclass(frozen=True, slots=True)
class Decision:
    """One step's verdict: ``code`` is a reason code for anything but a plain allow."""

    step: str
    outcome: Outcome
    code: str | None = None


@dataclass(slots=True)
class RequestContext:
    endpoint: str
    workflow: str | None
    # Unique, not secret: a PRNG draw avoids a getrandom syscall per request.
    request_id: str = field(default_factory=lambda: f"{random.getrandbits(128):032x}")
    started: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    policy: CompiledPolicy | None = None
    request: NormalizedRequest | None = None
    decisions: list[Decision] = field(default_factory=list)
    model_used: str | None = None
    attempts: int = 0
    upstream_status: int | None = None
    upstream_s: float | None = None  # from the first attempt to the answer's head
    tokens_in: int | None = None  # as the provider reported them
    tokens_out: int | None = None
    reserved_usd: float | None = None  # set by the limits step
    actual_usd: float | None = None
    limits: Grant | None = None  # what the limits step reserved, until it is settled
    limit_headers: dict[str, str] | None = None  # x-ratelimit-*, on every response
    streamed: bool = False
    boundary: BoundaryRecord | None = None
    # How a relayed stream ended: completed, client_cut, upstream_broken or blocked.
    stream_end: str | None = None
    audited: bool = False  # its one audit record has been made
    # What answered instead of the requested model ("model" or "message") and the reason code
    # that set it off; ``review``: flagged for manual review (README: Fallbacks).
    fallback: str | None = None
    fallback_reason: str | None = None
    review: bool = False
    # Answers paid for but not returned (a quality check refused them): model, tokens in and
    # out as reported; the limits step counts their cost.
    discarded: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    candidate: CandidateVerdict | None = None  # a W.candidate.yaml's shadow verdict

    @property
    def decision(self) -> str:
        """The ``x-gateway-decision`` value: the last outcome that changed or refused the
        request, then its reason code (``masked`` when the data boundary changed what was
        sent or answered); only when there is none, the last note that let it pass (such as
        ``quality.unchecked``)."""
        noted = [d for d in self.decisions if d.code is not None]
        for d in reversed(noted):
            if d.outcome != "allow":
                return (
                    "masked"
                    if d.code == errors.BOUNDARY_MASKED.code
                    else f"{d.outcome}; reason={d.code}"
                )
        return f"allow; reason={noted[-1].code}" if noted else "allow"

    def headers(self) -> dict[str, str]:
        headers = {
            "x-request-id": self.request_id,
            "x-gateway-decision": self.decision,
            "x-gateway-policy-version": self.policy.version if self.policy else "none",
        }
        if self.fallback_reason is not None:
            headers["x-gateway-fallback"] = self.fallback_reason
        if self.limit_headers:
            headers.update(self.limit_headers)
        return headers
