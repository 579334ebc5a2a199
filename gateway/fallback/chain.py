"""The answer a request gets: the policy's model chain tried until an answer passes the
quality checks, within one total deadline.

Upstream failures move along the chain inside the forwarder; a failed check moves along it
here. Whole answers are checked as they come; a stream is held whole and checked with
``quality.streaming: buffer`` (nothing has reached the client yet, so a later model or the
fallback message can still answer), or relayed unchecked with ``pass``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway import errors
from gateway.context import Decision, RequestContext
from gateway.errors import GatewayError
from gateway.fallback.triggers import ANSWER_TRIGGERS, trigger_of
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.quality.checks import check
from gateway.quality.read import read_stream
from gateway.quality.rules import QualityRules
from gateway.steps import Step
from gateway.surfaces import Answer as Read
from gateway.surfaces import Surface, surface_of
from gateway.upstream.forward import Forwarder, note_fallback
from gateway.upstream.provider import UpstreamResponse
from gateway.upstream.usage import note_usage

__all__ = ["Answer", "AnswerChain"]


@dataclass(slots=True)
class Answer:
    """``held``: a buffered stream's events, checked, not yet through the data boundary;
    ``read``: a whole answer's one reading, checked (its body may have changed: logprobs
    stripped), which later steps use instead of reading ``response`` again."""

    response: UpstreamResponse
    held: list[bytes] | None = None
    read: Read | None = None


class AnswerChain:
    def __init__(self, forwarder: Forwarder) -> None:
        self._forwarder = forwarder

    async def answer(
        self, ctx: RequestContext, request: NormalizedRequest, policy: CompiledPolicy
    ) -> Answer:
        rules = policy.quality
        if rules is None:
            return Answer(await self._forwarder.send(ctx, request, policy))
        checked = not request.stream or rules.buffers_streams
        surface = surface_of(request)
        strip = rules.wants_logprobs and checked and surface.ask_logprobs(request)
        chain = policy.model_chain(request.model)
        deadline = asyncio.get_running_loop().time() + policy.source.upstream.timeout_s
        start = 0
        while True:
            response = await self._forwarder.send(ctx, request, policy, chain[start:], deadline)
            if not checked:
                _unchecked(ctx)
                return Answer(response)
            ctx.enter(Step.QUALITY)  # a refusal from here on is the quality step's
            try:
                return await self._checked(ctx, surface, rules, response, strip)
            except GatewayError as exc:
                assert ctx.model_used is not None
                # Paid for but not returned: the limits step counts it (docs/limits.md).
                ctx.discarded.append((ctx.model_used, ctx.tokens_in, ctx.tokens_out))
                ctx.tokens_in = ctx.tokens_out = None
                start = chain.index(ctx.model_used) + 1
                if not self._may_try_next(exc, policy, request, chain[start:]):
                    raise
                note_fallback(ctx, exc.reason.code)
                ctx.enter(Step.FORWARD)

    async def _checked(
        self,
        ctx: RequestContext,
        surface: Surface,
        rules: QualityRules,
        response: UpstreamResponse,
        strip: bool,
    ) -> Answer:
        if response.events is None:
            read = surface.read_answer(response.body or b"", strip, response.data)
            note_usage(ctx, read)
            if not check(rules, read.choices):
                _unchecked(ctx)
            return Answer(response, read=read)
        try:
            choices, held, reader = await read_stream(surface, response.events, strip)
        finally:
            await response.aclose()
        note_usage(ctx, reader)
        if not check(rules, choices):
            _unchecked(ctx)
        return Answer(response, held)

    def _may_try_next(
        self,
        exc: GatewayError,
        policy: CompiledPolicy,
        request: NormalizedRequest,
        rest: tuple[str, ...],
    ) -> bool:
        trigger = trigger_of(exc.reason.code)
        return (
            trigger in ANSWER_TRIGGERS
            and trigger in policy.source.fallback.on
            and any(self._forwarder.serves(m, request.api) for m in rest)
        )


def _unchecked(ctx: RequestContext) -> None:
    if not any(d.code == errors.QUALITY_UNCHECKED.code for d in ctx.decisions):
        ctx.decisions.append(Decision(Step.QUALITY, "allow", errors.QUALITY_UNCHECKED.code))
