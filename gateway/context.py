"""What one request decided and did, filled in step by step, read by the audit trail.

``enter`` is the one hook on the request path: every step starts through it, so it records
each step's duration and is where metrics, traces and logs attach (``StepObserver``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Protocol

from gateway.auth.principal import Principal
from gateway.boundary.record import BoundaryRecord
from gateway.limits.grant import Grant
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.steps import Decision, Outcome, Step, decide

__all__ = ["CandidateRecord", "Decision", "Outcome", "RequestContext", "StepObserver"]


class CandidateRecord(Protocol):
    """A candidate policy's shadow verdict on this request (gateway/rollout/verdict.py), as
    the audit record keeps it; the context needs no more of the rollout than this."""

    def recorded(self, ctx: RequestContext) -> dict[str, Any]: ...


class StepObserver(Protocol):
    """Told of every step a request leaves, with its duration: where metrics, traces and logs
    attach. None (the default) observes nothing and costs one comparison per step."""

    def left(self, ctx: RequestContext, step: Step, seconds: float) -> None: ...


@dataclass(slots=True)
class RequestContext:
    endpoint: str
    workflow: str | None
    # Unique, not secret: a PRNG draw avoids a getrandom syscall per request (its bytes'
    # hex: 0.19 µs, formatting the number took 0.46).
    request_id: str = field(default_factory=lambda: random.getrandbits(128).to_bytes(16).hex())
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
    # that set it off; ``review``: flagged for manual review (docs/quality-and-fallbacks.md).
    fallback: str | None = None
    fallback_reason: str | None = None
    review: bool = False
    review_id: str | None = None  # the review item this request opened (gateway/review/)
    # Answers paid for but not returned (a quality check refused them): model, tokens in and
    # out as reported; the limits step counts their cost.
    discarded: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    candidate: CandidateRecord | None = None  # a W.candidate.yaml's shadow verdict
    # For the observers (gateway/observe/): the HTTP method and route, the status the client
    # got (set by the audit step), when the first streamed event left (perf_counter; 0:
    # none), the W3C trace id, and keyed fingerprints of the instructions and tools as they
    # left ({kind: hex}).
    method: str = ""
    route: str = ""  # the route template, or the path truncated (never the query string)
    status: int | None = None
    first_event: float = 0.0
    trace_id: str | None = None
    fingerprints: dict[str, str] | None = None
    # Each upstream attempt: model, start and end (perf_counter), failure kind (None: answered).
    attempt_log: list[tuple[str, float, float, str | None]] = field(default_factory=list)
    trace: object | None = None  # the tracer's state of this request, when traced
    # The step running now (a refusal is recorded under it), since when, and every step left
    # with its duration in seconds, in order (a step entered twice is listed twice).
    step: Step = Step.GATEWAY
    step_since: float = 0.0  # 0: no step is running
    timings: list[tuple[Step, float]] = field(default_factory=list)
    observer: StepObserver | None = None
    # Whether the client's routing values are configured names: only then are they shown
    # verbatim in logs and records (gateway/audit/names.py). ``path``: an unknown route's.
    workflow_known: bool = False
    model_known: bool = False
    path: str | None = None

    def __post_init__(self) -> None:
        self.step_since = self.started

    def enter(self, step: Step) -> None:
        """Leave the running step, recording its duration, and start ``step``."""
        now = perf_counter()
        if since := self.step_since:  # inlined: this runs a dozen times per request
            self.timings.append((self.step, now - since))
            if self.observer is not None:
                self.observer.left(self, self.step, now - since)
        self.step = step
        self.step_since = now

    def leave(self) -> None:
        """Leave the running step (``step`` keeps naming it); entering another resumes."""
        if since := self.step_since:
            seconds = perf_counter() - since
            self.timings.append((self.step, seconds))
            if self.observer is not None:
                self.observer.left(self, self.step, seconds)
            self.step_since = 0.0

    @property
    def decision(self) -> str:
        """The ``x-gateway-decision`` value: ``decide(...).header`` (gateway/steps.py)."""
        return decide(self.decisions).header

    def headers(self) -> dict[str, str]:
        headers = {
            "x-request-id": self.request_id,
            "x-gateway-decision": self.decision if self.decisions else "allow",
            "x-gateway-policy-version": self.policy.version if self.policy else "none",
        }
        if self.fallback_reason is not None:
            headers["x-gateway-fallback"] = self.fallback_reason
        if self.limit_headers:
            headers.update(self.limit_headers)
        return headers
