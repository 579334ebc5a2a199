"""Send a request upstream: the requested model with retries, then each fallback model in
order (for the failures the policy's ``fallback.on`` names), all within the policy's total
deadline."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from functools import partial

from gateway import errors
from gateway.config import ModelConfig
from gateway.context import Decision, RequestContext
from gateway.errors import GatewayError
from gateway.fallback.triggers import trigger_of
from gateway.normalized import Api, NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.steps import Step
from gateway.surfaces import OPENAI, RESPONSES, surface_of
from gateway.translate.chat_responses import ViaResponses
from gateway.translate.provider import Translating
from gateway.upstream.breaker import Breaker
from gateway.upstream.provider import (
    Provider,
    StoredState,
    Timeouts,
    UpstreamFailure,
    UpstreamResponse,
)
from gateway.upstream.retry import retried

__all__ = ["Forwarder", "note_fallback"]

log = logging.getLogger("gateway.upstream")


class Forwarder:
    """Routes catalogue models to providers and turns exhausted attempts into one error."""

    def __init__(
        self,
        providers: dict[str, Provider],
        models: dict[str, ModelConfig],
        breaker: Breaker | None = None,
    ) -> None:
        self._providers = providers
        self._models = models
        self._breaker = breaker
        self._running: asyncio.AbstractEventLoop | None = None
        self._routes: dict[tuple[str, Api], Provider | None] = {}

    def _loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, kept while it runs: asyncio.get_running_loop() costs a getpid()
        system call (CPython's check for a fork) on every request."""
        loop = self._running
        if loop is None or not loop.is_running():
            loop = self._running = asyncio.get_running_loop()
        return loop

    async def aclose(self) -> None:
        """The breaker's connection; the providers belong to the app, which closes them."""
        if self._breaker is not None:
            await self._breaker.aclose()

    def catalogued(self, model: str) -> bool:
        """Whether ``model`` is a name in the gateway's catalogue."""
        return model in self._models

    def provider_of(self, model: str) -> Provider:
        return self._providers[self._models[model].provider]

    def serves(self, model: str, api: Api) -> bool:
        """Whether ``model`` serves ``api``'s endpoint and its provider takes its wire format,
        or ``api`` is chat and the model serves the Responses API (translated on the way)."""
        return self._route(model, api) is not None

    def _route(self, model: str, api: Api) -> Provider | None:
        """The provider to send ``api``'s requests for ``model`` to, None if none can; found
        once per catalogue model and API (the catalogue and providers never change)."""
        try:
            return self._routes[model, api]
        except KeyError:
            route = self._routes[model, api] = self._find_route(model, api)
            return route

    def _find_route(self, model: str, api: Api) -> Provider | None:
        config, provider = self._models[model], self.provider_of(model)
        if config.serves(surface_of(api).endpoint) and provider.speaks(api):
            # A provider's own API goes to it directly, not through its translating wrapper.
            return provider.native(api) if isinstance(provider, Translating) else provider
        if api == OPENAI.api and config.serves(RESPONSES.endpoint):
            return ViaResponses(provider) if provider.speaks(RESPONSES.api) else None
        return None

    async def stored(
        self, policy: CompiledPolicy, api: Api, method: str, path: str
    ) -> UpstreamResponse:
        """``method`` on a response the provider kept, asked of the first of the workflow's
        models that serves ``api`` from a provider keeping state (OpenAI's)."""
        upstream = policy.source.upstream
        deadline = asyncio.get_running_loop().time() + upstream.timeout_s
        timeouts = Timeouts(upstream.connect_timeout_s, upstream.read_timeout_s, deadline)
        for model in policy.access.models:
            provider = self.provider_of(model)
            if self.serves(model, api) and isinstance(provider, StoredState):
                try:
                    return await provider.stored(method, path, timeouts)
                except UpstreamFailure as exc:
                    raise _as_gateway_error(exc) from None
        raise GatewayError(
            errors.REQUEST_WRONG_API, "No model of this workflow keeps responses at its provider."
        )

    async def send(
        self,
        ctx: RequestContext,
        request: NormalizedRequest,
        policy: CompiledPolicy,
        chain: Sequence[str] | None = None,
        deadline: float | None = None,
    ) -> UpstreamResponse:
        """The first answer along ``chain`` (default: the policy's model chain) by
        ``deadline`` (a ``loop.time()``; default: the policy's total timeout from now)."""
        upstream = policy.source.upstream
        if deadline is None:
            deadline = self._loop().time() + upstream.timeout_s
        timeouts = Timeouts(upstream.connect_timeout_s, upstream.read_timeout_s, deadline)
        requested = self._route(request.model, request.api)
        if requested is None:
            raise GatewayError(
                errors.REQUEST_WRONG_API, f"Model '{request.model}' is not served through this API."
            )
        on = policy.source.fallback.on
        failure: GatewayError | None = None
        started = time.perf_counter()  # uvloop's loop.time() counts whole milliseconds
        try:
            # Each model's tries are awaited here, not through a layer per concern (retries,
            # breaker, translation): each layer was one more coroutine per request.
            for model in chain or policy.model_chain(request.model):
                provider = requested if model == request.model else self._route(model, request.api)
                if provider is None:
                    continue
                if failure is not None:  # the next model answers for the one that failed
                    note_fallback(ctx, failure.reason.code)
                try:
                    try:
                        response = await self._attempt(ctx, provider, request, model, timeouts)
                    except UpstreamFailure as first:  # only a failure pays for the retries
                        again = partial(self._attempt, ctx, provider, request, model, timeouts)
                        response = await retried(again, first, upstream.retries, timeouts.deadline)
                except UpstreamFailure as exc:
                    log.warning(
                        "upstream %s failed for model %s: %s [request %s]",
                        provider.name,
                        model,
                        exc,
                        ctx.request_id,
                    )
                    failure = _as_gateway_error(exc)
                    ctx.upstream_status = exc.status
                    if not exc.try_next_model or trigger_of(failure.reason.code) not in on:
                        break
                    continue
                ctx.model_used = model
                ctx.upstream_status = response.status
                return response
        finally:  # from the first attempt of the first call to the last answer's head
            ctx.upstream_s = time.perf_counter() - started + (ctx.upstream_s or 0.0)
        assert failure is not None  # the chain always holds a model that speaks the API
        raise failure

    async def _attempt(
        self,
        ctx: RequestContext,
        provider: Provider,
        request: NormalizedRequest,
        model: str,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        """One attempt, through the circuit breaker of (provider, model) if there is one."""
        upstream_model = self._models[model].upstream_model
        key = f"{provider.name}/{upstream_model}"
        started, failed = time.perf_counter(), None
        try:
            if self._breaker is not None and not await self._breaker.allow(key):
                raise UpstreamFailure("circuit", f"circuit {key} is open")
            ctx.attempts += 1
            try:
                response = await provider.send(request, upstream_model, timeouts)
            except UpstreamFailure as exc:
                if self._breaker is not None and exc.kind != "config":  # it reached the provider
                    await self._breaker.record(key, not exc.upstream_fault)
                raise
            if self._breaker is not None:
                await self._breaker.record(key, True)
            return response
        except UpstreamFailure as exc:
            failed = exc.kind
            raise
        finally:  # each attempt, for the traces (gateway/observe/traces.py)
            ctx.attempt_log.append((model, started, time.perf_counter(), failed))


def note_fallback(ctx: RequestContext, code: str) -> None:
    """Record that another model answers because of ``code``."""
    ctx.decisions.append(Decision(Step.FALLBACK, "transform", code))
    ctx.fallback, ctx.fallback_reason = "model", code


def _as_gateway_error(failure: UpstreamFailure) -> GatewayError:
    if failure.kind == "circuit":
        return GatewayError(errors.UPSTREAM_CIRCUIT_OPEN, detail=str(failure))
    if failure.kind == "timeout":
        return GatewayError(errors.UPSTREAM_TIMEOUT, detail=str(failure))
    if failure.kind == "connect":
        return GatewayError(errors.UPSTREAM_UNAVAILABLE, detail=str(failure))
    if failure.kind == "too_large":
        return GatewayError(errors.UPSTREAM_TOO_LARGE, detail=str(failure))
    if failure.kind == "config" or failure.status in (401, 403):
        return GatewayError(errors.UPSTREAM_AUTH, detail=str(failure))
    if failure.status == 429:
        headers = {}
        if failure.retry_after is not None:
            headers["retry-after"] = str(max(1, round(failure.retry_after)))
        return GatewayError(errors.UPSTREAM_RATE_LIMITED, headers=headers, detail=str(failure))
    if failure.status is not None and 400 <= failure.status < 500:
        # The provider refused the request itself (a bad parameter): the client needs its
        # words, in the same wire format the client speaks.
        return GatewayError(
            errors.UPSTREAM_REJECTED, status=failure.status, body=failure.body, detail=str(failure)
        )
    return GatewayError(errors.UPSTREAM_ERROR, detail=str(failure))
