"""Send a request upstream: the requested model with retries, then each fallback model in
order, all within the policy's total deadline."""

from __future__ import annotations

import asyncio
import logging
import time

from gateway import errors
from gateway.config import ModelConfig
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.upstream.provider import Provider, Timeouts, UpstreamFailure, UpstreamResponse
from gateway.upstream.retry import with_retries

__all__ = ["Forwarder"]

log = logging.getLogger("gateway.upstream")


class Forwarder:
    """Routes catalogue models to providers and turns exhausted attempts into one error."""

    def __init__(self, providers: dict[str, Provider], models: dict[str, ModelConfig]) -> None:
        self._providers = providers
        self._models = models

    def provider_of(self, model: str) -> Provider:
        return self._providers[self._models[model].provider]

    async def send(
        self, ctx: RequestContext, request: NormalizedRequest, policy: CompiledPolicy
    ) -> UpstreamResponse:
        upstream = policy.source.upstream
        deadline = asyncio.get_running_loop().time() + upstream.timeout_s
        timeouts = Timeouts(upstream.connect_timeout_s, upstream.read_timeout_s, deadline)
        if not self.provider_of(request.model).speaks(request.api):
            raise GatewayError(
                errors.REQUEST_WRONG_API, f"Model '{request.model}' is not served through this API."
            )
        started = time.perf_counter()  # uvloop's loop.time() counts whole milliseconds
        try:
            return await self._send(ctx, request, policy, timeouts)
        finally:
            ctx.upstream_s = time.perf_counter() - started

    async def _send(
        self,
        ctx: RequestContext,
        request: NormalizedRequest,
        policy: CompiledPolicy,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        upstream = policy.source.upstream
        failure: UpstreamFailure | None = None
        for model in policy.model_chain(request.model):
            provider = self.provider_of(model)
            if not provider.speaks(request.api):
                continue
            route = self._models[model]

            async def attempt(
                provider: Provider = provider, upstream_model: str = route.upstream_model
            ) -> UpstreamResponse:
                ctx.attempts += 1
                return await provider.send(request, upstream_model, timeouts)

            try:
                response = await with_retries(attempt, upstream.retries, timeouts.deadline)
            except UpstreamFailure as exc:
                log.warning(
                    "upstream %s failed for model %s: %s [request %s]",
                    provider.name,
                    model,
                    exc,
                    ctx.request_id,
                )
                failure = exc
                ctx.upstream_status = exc.status
                if not exc.try_next_model:
                    break
                continue
            ctx.model_used = model
            ctx.upstream_status = response.status
            return response
        assert failure is not None  # the requested model always speaks the API
        raise _as_gateway_error(failure)


def _as_gateway_error(failure: UpstreamFailure) -> GatewayError:
    if failure.kind == "timeout":
        return GatewayError(errors.UPSTREAM_TIMEOUT, detail=str(failure))
    if failure.kind == "connect":
        return GatewayError(errors.UPSTREAM_UNAVAILABLE, detail=str(failure))
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
