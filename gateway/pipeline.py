"""The request path: each step in order, once per request; a refusal becomes the wire error.

    authenticate -> resolve_policy -> access (the caller) -> read_request -> access (the
        request) -> limits -> boundary -> forward (retries, the breaker, fallback models)
        -> quality -> fallback -> inspect_answer -> relay -> audit

The steps are ``Step`` (gateway/steps.py), in this order. Each starts through
``RequestContext.enter``, the one hook that times it and tells an observer (metrics, traces,
logs); each records its verdicts as ``Decision``s, and ``decide`` turns them into what the
gateway decided. A refusal on the way may still become a success: the policy's fallback
message (gateway/fallback/). The audit step runs when the response finishes: for a whole
response in app.py (the model routes' handler, or the ``before_send`` hook of litestar's
routes), for a stream in ``relay`` (gateway/relay.py);
both go through ``AuditTrail`` (gateway/audit/trail.py), which enters ``Step.AUDIT``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import orjson

from gateway import errors
from gateway.access import allowed_models, check_caller, check_request
from gateway.audit.retention import ask_no_store
from gateway.audit.trail import AuditTrail
from gateway.auth.credentials import Authenticator
from gateway.boundary.answer import inspect_read
from gateway.boundary.step import Boundary, Inspection
from gateway.boundary.stream import inspect_stream
from gateway.config import ServerConfig
from gateway.context import Decision, Outcome, RequestContext, StepObserver
from gateway.errors import GatewayError
from gateway.fallback.chain import AnswerChain
from gateway.fallback.message import fallback_message
from gateway.limits.step import Limits
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.policy.registry import PolicyRegistry, PolicySet
from gateway.relay import relay, unreadable
from gateway.review.service import Reviews
from gateway.review.stream import buffered
from gateway.rollout.assign import NO_FLAGS, assign
from gateway.rollout.service import Rollout
from gateway.rollout.shadow import judge_caller, judge_request
from gateway.steps import Step
from gateway.surfaces import Answer, Surface
from gateway.surfaces.base import SHAPE_ERRORS
from gateway.surfaces.bounds import read_request
from gateway.upstream.forward import Forwarder
from gateway.upstream.provider import UpstreamResponse
from gateway.upstream.sse import replay
from gateway.upstream.usage import note_usage

__all__ = ["Call", "Pipeline", "Reader", "Reply"]

Reader = Callable[[bytes], Answer]  # reads a body as an answer, for the boundary

log = logging.getLogger("gateway.pipeline")

# Each step as a constant: on Python 3.11 a member read from its enum class goes through
# ``EnumType.__getattr__`` (75 ns, against 19 for a global), and a request enters ten.
(
    _ACCESS,
    _AUTHENTICATE,
    _BOUNDARY,
    _FALLBACK,
    _FORWARD,
    _INSPECT_ANSWER,
    _LIMITS,
    _READ_REQUEST,
    _RELAY,
    _RESOLVE_POLICY,
) = (
    Step.ACCESS,
    Step.AUTHENTICATE,
    Step.BOUNDARY,
    Step.FALLBACK,
    Step.FORWARD,
    Step.INSPECT_ANSWER,
    Step.LIMITS,
    Step.READ_REQUEST,
    Step.RELAY,
    Step.RESOLVE_POLICY,
)

# The steps that read the upstream's answer: an unreadable shape there is refused, not a 500.
_READING_ANSWERS = (Step.FORWARD, Step.QUALITY, Step.INSPECT_ANSWER)
_REFUSALS: tuple[type[Exception], ...] = (GatewayError, *SHAPE_ERRORS)
_RETRY = {"retry-after": "30"}  # a paused workflow: when a client may try again


@dataclass(slots=True)
class Call:
    """One client request as the HTTP layer hands it over; the body is read only when needed."""

    surface: Surface
    workflow: str | None
    headers: Mapping[str, str]
    read_body: Callable[[], Awaitable[bytes]]


@dataclass(slots=True)
class Reply:
    status: int
    content_type: str
    headers: dict[str, str]
    body: bytes = b""
    events: AsyncIterator[bytes] | None = field(default=None)


class Pipeline:
    def __init__(
        self,
        authenticator: Authenticator,
        policies: PolicyRegistry,
        forwarder: Forwarder,
        boundary: Boundary,
        *,
        trail: AuditTrail | None = None,
        limits: Limits | None = None,
        observer: StepObserver | None = None,
        bounds: ServerConfig | None = None,
        reviews: Reviews | None = None,
        rollout: Rollout | None = None,
    ) -> None:
        self._auth = authenticator
        self._policies = policies
        self._forwarder = forwarder
        self._answers = AnswerChain(forwarder)
        self._boundary = boundary
        self._trail = trail or AuditTrail(None)  # None: no audit (in-process tests, benches)
        self._limits = limits  # None: no limits are kept (in-process tests, benches)
        self._observer = observer  # told of every step each request leaves
        self._bounds = bounds or ServerConfig()  # what one request body may hold
        self._reviews = reviews  # None: no review queue (offline tools, benches)
        self._rollout = rollout  # None: no runtime pauses or aborts (offline tools, benches)

    async def aclose(self) -> None:
        """Release what the steps hold: the vault's and the breaker's connections, the limits'
        settlements and store."""
        await self._boundary.aclose()
        await self._forwarder.aclose()
        if self._limits is not None:
            await self._limits.drain()
            await self._limits.store.aclose()

    async def complete(self, ctx: RequestContext, call: Call) -> Reply:
        """Run a chat/messages request through every step; never raises GatewayError."""
        ctx.observer = self._observer
        reply = await self._complete(ctx, call)
        if reply.events is None:
            ctx.enter(_RELAY)  # the whole answer goes back; the audit step follows it
        return reply

    async def _complete(self, ctx: RequestContext, call: Call) -> Reply:
        ctx.workflow_known = call.workflow in self._policies.current.policies
        ctx.enter(_AUTHENTICATE)
        response: UpstreamResponse | None = None
        review: dict[str, str] = {}  # a held answer's headers
        try:
            # Set beforehand only by the review queue sending an approved request on.
            principal = ctx.principal = ctx.principal or await self._auth.authenticate(call.headers)
            ctx.enter(_RESOLVE_POLICY)
            policies = self._policies.current  # once: the request keeps this generation
            flags = self._rollout.flags if self._rollout is not None else NO_FLAGS
            chosen = assign(policies, self._resolve(call, policies), principal, call.headers, flags)
            policy = ctx.policy = chosen.policy  # live, or the candidate for a canary's share
            judged = None
            if (candidate := chosen.shadow) is not None:
                judged = ctx.candidate = judge_caller(candidate, principal, call.surface.endpoint)
            ctx.enter(_ACCESS)  # the caller first, so one not admitted never has its body read
            check_caller(policy.access, principal, call.surface.endpoint)
            ctx.enter(_READ_REQUEST)
            raw = await call.read_body()
            request = ctx.request = await read_request(call.surface, raw, self._bounds)
            request.headers = call.headers
            ctx.model_known = self._forwarder.catalogued(request.model)
            if chosen.paused is not None:  # read first: the fallback message answers in its shape
                raise GatewayError(errors.POLICY_PAUSED, detail=chosen.paused, headers=_RETRY)
            if candidate is not None and judged is not None:  # before anything changes it
                await judge_request(judged, candidate, request, policy)
            ctx.enter(_ACCESS)
            if (changed := check_request(policy.access, request)) is not None:
                ctx.decisions.append(Decision(Step.ACCESS, "transform", changed.code))
            ask_no_store(policy, request)
            # A step with nothing to do for this policy is entered (timed, observed), but
            # not awaited: a coroutine each, made and run for a return.
            if self._limits is not None:
                ctx.enter(_LIMITS)
                if policy.limits is not None:
                    await self._limits.admit(ctx, request, policy)
            ctx.enter(_BOUNDARY)
            inspection = None
            if policy.data is not None:
                inspection = await self._boundary.inspect(ctx, request, policy)
            ctx.enter(_FORWARD)  # and quality, entered by the answer chain
            answer = await self._answers.answer(ctx, request, policy)
            response = answer.response
            if response.events is None:
                read = answer.read or call.surface.read_answer(
                    response.body or b"", data=response.data
                )
                note_usage(ctx, read)  # the usage, before the boundary may refuse the answer
                if inspection is not None:
                    ctx.enter(_INSPECT_ANSWER)
                    body = await inspect_read(inspection, read)
                else:
                    body = read.body()
                if (
                    self._reviews is not None
                    and (on_hold := await self._reviews.answered(ctx, body)) is not None
                ):
                    await self._settle(ctx)
                    headers = {**ctx.headers(), **on_hold.headers}
                    return Reply(202, "application/json", headers, on_hold.body)
                if self._unsettled(ctx):
                    await self._settle(ctx)
                return Reply(response.status, response.content_type, ctx.headers(), body)
            if answer.held is None and self._reviews and self._reviews.holds_streams(ctx):
                answer.held = await buffered(ctx, call.surface, response)  # tool holds
            if answer.held is not None:  # a checked stream: inspected whole, before any byte
                ctx.enter(_INSPECT_ANSWER)
                response = await _inspect_held(answer.held, response, inspection, call.surface)
                inspection = None
                if self._reviews is not None:
                    response, review = await self._reviews.answered_stream(ctx, response)
        except _REFUSALS as caught:
            if not isinstance(caught, GatewayError) and ctx.step not in _READING_ANSWERS:
                raise  # not the upstream's doing: a fault of the gateway's own
            exc = caught if isinstance(caught, GatewayError) else unreadable(ctx, caught)
            refused_in = ctx.step
            ctx.enter(_FALLBACK)
            fallback = fallback_message(ctx, exc)
            status = 200
            if self._reviews is not None and (held := await self._reviews.refused(ctx, exc)):
                fallback, status, review = held.body, 202, held.headers
            if fallback is None:
                await self._settle(ctx)
                return self._refuse(ctx, call.surface, exc, refused_in)
            log.info(
                "request %s answered by the fallback message: %s",
                ctx.request_id,
                exc.reason.code + _detail(exc),
            )
            if isinstance(fallback, bytes):
                ctx.tokens_in = ctx.tokens_out = 0  # no model answered
                await self._settle(ctx)
                return Reply(status, "application/json", {**ctx.headers(), **review}, fallback)
            response = UpstreamResponse(status, "text/event-stream", events=replay(fallback))
            inspection = None
        finally:  # an unexpected error: no reservation is left behind
            if (response is None or response.events is None) and self._unsettled(ctx):
                await self._settle(ctx)
        ctx.streamed = True
        return Reply(
            response.status,
            "text/event-stream",
            {**ctx.headers(), **review, "cache-control": "no-cache"},
            events=relay(ctx, call.surface, response, inspection, self._trail, self._limits),
        )

    async def models(self, ctx: RequestContext, call: Call, model_id: str | None = None) -> Reply:
        """The models this caller may use in this workflow, in the surface's list shape; with
        ``model_id`` that one model, or 404 ``request.unknown_model`` (as for one not listed)."""
        ctx.observer = self._observer
        ctx.workflow_known = call.workflow in self._policies.current.policies
        ctx.enter(_AUTHENTICATE)
        try:
            principal = ctx.principal = await self._auth.authenticate(call.headers)
            ctx.enter(_RESOLVE_POLICY)
            policy = ctx.policy = self._resolve(call, self._policies.current)
            ctx.enter(_ACCESS)
            check_caller(policy.access, principal, "models")
            # Only what this caller could call through the API it speaks.
            usable = allowed_models(policy.access, call.surface.endpoint)
            listed = [
                (m, provider.name)
                for m in usable
                if (provider := self._forwarder.provider_of(m)).speaks(call.surface.api)
            ]
            body = call.surface.models_body(listed)
            if model_id is not None:
                body = _one_model(body, model_id)
        except GatewayError as exc:
            reply = self._refuse(ctx, call.surface, exc, ctx.step)
            ctx.enter(_RELAY)
            return reply
        reply = Reply(200, "application/json", ctx.headers(), body)
        ctx.enter(_RELAY)
        return reply

    async def stored(
        self, ctx: RequestContext, call: Call, method: str, path: str, read: Reader
    ) -> Reply:
        """``method`` on a response the provider kept (``GET``/``DELETE /v1/responses/{id}``),
        only where the workflow lets the provider keep any; what comes back was the model's
        raw answer, so it is inspected (``read`` reads it) as an answer would be."""
        ctx.observer = self._observer
        ctx.enter(_AUTHENTICATE)
        try:
            principal = ctx.principal = await self._auth.authenticate(call.headers)
            ctx.enter(_RESOLVE_POLICY)
            policy = ctx.policy = self._resolve(call, self._policies.current)
            ctx.enter(_ACCESS)
            check_caller(policy.access, principal, call.surface.endpoint)
            if not policy.source.retention.upstream_store:
                raise GatewayError(
                    errors.RETENTION_PROVIDER_STATE,
                    "This workflow forbids provider storage, so no response is kept to read or"
                    " delete: send the whole conversation in 'input' instead.",
                )
            ctx.enter(_FORWARD)
            response = await self._forwarder.stored(policy, call.surface.api, method, path)
            body = response.body or b""
            if method == "GET":
                none = NormalizedRequest(call.surface.api, {}, "", False, None)
                inspection = await self._boundary.inspect(ctx, none, policy)
                if inspection is not None:
                    ctx.enter(_INSPECT_ANSWER)
                    body = await inspect_read(inspection, read(body))
        except GatewayError as exc:
            reply = self._refuse(ctx, call.surface, exc, ctx.step)
            ctx.enter(_RELAY)
            return reply
        reply = Reply(response.status, "application/json", ctx.headers(), body)
        ctx.enter(_RELAY)
        return reply

    def refuse(self, ctx: RequestContext, surface: Surface, exc: GatewayError) -> Reply:
        """A refusal raised outside the steps (routing, body limits) in the surface's shape."""
        return self._refuse(ctx, surface, exc, Step.GATEWAY)

    def _resolve(self, call: Call, policies: PolicySet) -> CompiledPolicy:
        if not call.workflow:
            raise GatewayError(errors.POLICY_MISSING_WORKFLOW)
        policy = policies.policies.get(call.workflow)
        if policy is None:
            raise GatewayError(
                errors.POLICY_UNKNOWN_WORKFLOW, f"Unknown workflow '{call.workflow[:64]}'."
            )
        return policy

    def _refuse(
        self, ctx: RequestContext, surface: Surface, exc: GatewayError, step: Step
    ) -> Reply:
        upstream = exc.reason.code.startswith("upstream.")
        outcome: Outcome = "error" if exc.status >= 500 or upstream else "deny"
        ctx.decisions.append(Decision(step, outcome, exc.reason.code))
        # The code and detail, not the message: a message may quote the client's values.
        log.info("request %s refused: %s", ctx.request_id, exc.reason.code + _detail(exc))
        headers = {**ctx.headers(), **exc.headers}
        if exc.status >= 500:
            headers["x-should-retry"] = "false"  # the gateway already retried upstream
        body = exc.body if exc.body is not None else surface.error_body(exc, ctx.request_id)
        return Reply(exc.status, "application/json", headers, body)

    async def _settle(self, ctx: RequestContext) -> None:
        # Called again by ``_complete``'s ``finally``: a request settled or never reserved
        # (no limits in its policy) has nothing to release.
        if self._limits is not None and self._unsettled(ctx):
            await self._limits.settle(ctx)

    def _unsettled(self, ctx: RequestContext) -> bool:
        """Whether ``_settle`` has anything to do (most requests: no; no coroutine then)."""
        return self._limits is not None and ctx.limits is not None and not ctx.limits.settled


def _one_model(listed: bytes, model_id: str) -> bytes:
    """One model of a list body, in the same API's shape (its list's ``data`` entry)."""
    for entry in orjson.loads(listed)["data"]:
        if entry["id"] == model_id:
            return orjson.dumps(entry)
    raise GatewayError(
        errors.REQUEST_UNKNOWN_MODEL,
        f"The model '{model_id[:64]}' does not exist or is not available to this caller.",
    )


async def _inspect_held(
    held: list[bytes],
    response: UpstreamResponse,
    inspection: Inspection | None,
    surface: Surface,
) -> UpstreamResponse:
    """A held stream through the data boundary now, so a blocked answer can still fall back."""
    if inspection is not None:
        held = [event async for event in inspect_stream(inspection, surface, replay(held))]
    return UpstreamResponse(response.status, response.content_type, events=replay(held))


def _detail(exc: GatewayError) -> str:
    return f" ({exc.detail})" if exc.detail else ""
