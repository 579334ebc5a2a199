"""The limits step: admit a request against its workflow's rates and budgets, settle it when
its answer ends.

``admit`` runs between ``access`` and ``boundary``: it reserves the request's worst-case cost
(estimated input plus its output ceiling, at the priciest model it may reach) and counts it
against every rule in one store call. ``settle`` runs once, however the request ends (answer,
refusal, error, client gone): the reservation is released and what was really used counted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway import errors
from gateway.auth.principal import Principal
from gateway.config import ModelConfig
from gateway.context import Decision, RequestContext
from gateway.errors import GatewayError
from gateway.fallback.triggers import ANSWER_TRIGGERS
from gateway.limits.cost import model_cost, tokens_cost, usd, worst_prices
from gateway.limits.estimate import estimate_input_tokens
from gateway.limits.grant import Grant
from gateway.limits.headers import rate_headers
from gateway.limits.keys import (
    budget_key,
    counter_tag,
    rate_key,
    settled_key,
    subjects,
    workflow_tag,
)
from gateway.limits.periods import period_bounds
from gateway.limits.plan import LimitPlan, RateLimit
from gateway.limits.report import ScopeUsage, scope_usage
from gateway.limits.store import Ask, BudgetCheck, RateCheck, Settlement, Store, StoreError
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.steps import Step
from gateway.surfaces import surface_of

__all__ = ["Limits"]

log = logging.getLogger("gateway.limits")


_RESEND_AFTER_S = (0.1, 0.5, 2.0, 5.0)  # a settlement the store did not take, sent again
_CACHE_MAX = 65_536  # callers x policies; cleared whole when full (rebuilt on next use)


@dataclass(frozen=True, slots=True)
class _Counters:
    tag: str  # the workflow's hash tag: its settlement markers' (keys.workflow_tag)
    rules: tuple[RateLimit, ...]  # the rule of each rate counter, for refusal messages
    rates: tuple[RateCheck, ...]
    budgets: tuple[BudgetCheck, ...]
    budget_keys: tuple[str, ...]
    token_rates: tuple[RateCheck, ...]


class Limits:
    """Built once per gateway: the store, the model catalogue (prices) and the clock."""

    def __init__(
        self,
        store: Store,
        models: Mapping[str, ModelConfig],
        prefix: str = "gw",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self._models = models
        self._clock = clock
        self._settling: set[asyncio.Task[None]] = set()
        self._cache: dict[tuple[str, Principal, int], _Counters] = {}

    async def admit(
        self, ctx: RequestContext, request: NormalizedRequest, policy: CompiledPolicy
    ) -> None:
        """Reserve or refuse; raises GatewayError with a ``limits.*`` code."""
        plan = policy.limits
        if plan is None or ctx.principal is None:
            return
        ask, counters = self._ask(plan, ctx.principal, request, policy)
        rules, rates, max_out, in_tokens = counters.rules, ask.rates, ask.max_out, ask.in_tokens
        try:
            verdict = await self.store.admit(ask)
        except StoreError as exc:
            self._store_failed(ctx, plan, exc)
            return
        ctx.limit_headers = rate_headers(rates, verdict.rates)
        shadow = policy.source.mode == "shadow"
        if not verdict.allowed:
            refused = verdict.refused_by
            rule = rules[refused] if isinstance(refused, int) else None
            refusal = _refusal(rule, verdict.retry_us)
            if not shadow:
                raise refusal
            ctx.decisions.append(Decision(Step.LIMITS, "allow", refusal.reason.code))
            return
        surface = surface_of(request)
        if verdict.out < max_out:
            surface.set_output_ceiling(request, verdict.out)
            ctx.decisions.append(
                Decision(Step.LIMITS, "transform", errors.LIMITS_TOKENS_CLAMPED.code)
            )
        ctx.reserved_usd = usd(verdict.reserved)
        ctx.limits = Grant(
            counters.tag,
            counters.budget_keys,
            counters.token_rates,
            verdict.reserved,
            in_tokens,
            verdict.out,
            in_tokens + verdict.out,
            plan.needs_usage and surface.ask_usage_in_stream(request),
            excess=verdict.excess,
        )

    def ask(
        self, principal: Principal, request: NormalizedRequest, policy: CompiledPolicy
    ) -> Ask | None:
        """The one store call ``admit`` makes for this request (benches measure it alone)."""
        if policy.limits is None:
            return None
        return self._ask(policy.limits, principal, request, policy)[0]

    def _ask(
        self,
        plan: LimitPlan,
        principal: Principal,
        request: NormalizedRequest,
        policy: CompiledPolicy,
    ) -> tuple[Ask, _Counters]:
        now = self._clock()
        in_tokens = estimate_input_tokens(request)
        chain = policy.model_chain(request.model)
        price_in, price_out = worst_prices(self._models.get(m) for m in chain)
        answers = _answers_bought(policy, chain)
        counters = self._counters(policy, plan, principal, now)
        ask = Ask(
            now * 1e6,
            counters.rates,
            counters.budgets,
            in_tokens=in_tokens,
            in_cost=tokens_cost(in_tokens, price_in) * answers,
            out_price=price_out * answers,
            max_out=request.max_tokens or 0,
            clamp=plan.clamp and policy.source.mode != "shadow",  # shadow never changes a request
        )
        return ask, counters

    def _counters(
        self, policy: CompiledPolicy, plan: LimitPlan, principal: Principal, now: float
    ) -> _Counters:
        """A caller's counters under a policy, built once a day (budget keys name the day)."""
        cache_key = (policy.version, principal, int(now // 86_400))
        found = self._cache.get(cache_key)
        if found is not None:
            return found
        who = subjects(principal, policy.access.roles)
        name, prefix = policy.name, self.prefix
        rules = tuple((r, value) for r in plan.rates for value in who[r.per])
        rates = tuple(
            RateCheck(
                rate_key(counter_tag(prefix, name, r.per, value), name, r.metric, r.per, value),
                r.unit,
                r.limit,
                r.period_us,
                1 if r.unit == "requests" else 0,
            )
            for r, value in rules
        )
        budgets = []
        for b in plan.budgets:
            ident, end, ttl = period_bounds(b.period, now)
            for value in who[b.per]:
                tag = counter_tag(prefix, name, b.per, value)
                key = budget_key(tag, name, b.period, ident, b.per, value)
                budgets.append(BudgetCheck(key, b.micro_usd, ttl, end))
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        found = self._cache[cache_key] = _Counters(
            workflow_tag(prefix, name),
            tuple(r for r, _ in rules),
            rates,
            tuple(budgets),
            tuple(b.key for b in budgets),
            tuple(r for r in rates if r.tokens),
        )
        return found

    async def scope_usage(self, policies: Mapping[str, CompiledPolicy]) -> list[ScopeUsage]:
        """Workflow- and gateway-wide budgets' spend and remainder now (the metrics feed).
        Raises StoreError."""
        return await scope_usage(self.store, self.prefix, policies, self._clock())

    def relays(self, ctx: RequestContext, usage_only: bool) -> bool:
        """Whether a stream event goes on to the client: the usage-only event the gateway
        asked for (its surface read ``usage_only``) is dropped when the client did not."""
        grant = ctx.limits
        if grant is None:
            return True
        grant.events += 1
        return not (grant.drop_usage_chunk and usage_only)

    async def settle(self, ctx: RequestContext) -> None:
        """Release the reservation and count the real cost; once per request, never raises.

        Shielded: a client that goes away while the store answers does not leave the
        reservation behind."""
        task = self.settle_nowait(ctx)
        if task is not None:
            await asyncio.shield(task)

    def settle_nowait(self, ctx: RequestContext) -> asyncio.Task[None] | None:
        """``settle`` for a place that cannot wait (a stream its client left): the cost is on
        the context at once, the store is updated in the background."""
        settlement = self._close(ctx)
        if settlement is None:
            return None
        task = asyncio.get_running_loop().create_task(self._apply(ctx, settlement))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        return task

    async def drain(self) -> None:
        """Wait for settlements still in flight (shutdown)."""
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    def _close(self, ctx: RequestContext) -> Settlement | None:
        grant = ctx.limits
        if grant is None or grant.settled:
            return None
        grant.settled = True
        tokens_in, tokens_out = _used(ctx, grant)
        actual = self._cost(ctx.model_used, tokens_in, tokens_out)
        for model, t_in, t_out in ctx.discarded:  # answers a quality check refused
            t_in = grant.in_estimate if t_in is None else t_in
            t_out = grant.out if t_out is None else t_out
            actual += self._cost(model, t_in, t_out)
            tokens_in, tokens_out = tokens_in + t_in, tokens_out + t_out
        ctx.actual_usd = usd(actual)
        return Settlement(
            self._clock() * 1e6,
            grant.budget_keys,
            grant.reserved,
            actual if grant.budget_keys else 0,
            grant.token_rates,
            grant.counted_tokens - (tokens_in + tokens_out),
            settled_key(grant.tag, ctx.request_id),
            grant.excess,
        )

    def _cost(self, name: str | None, tokens_in: int, tokens_out: int) -> int:
        return model_cost(self._models.get(name) if name else None, tokens_in, tokens_out)

    async def _apply(self, ctx: RequestContext, settlement: Settlement) -> None:
        """One try while the request waits; on a store error the settlement is sent again in
        the background (it carries a marker, so a try that did reach the store is not counted
        twice). Only when every try fails does the reservation stay counted until its period
        ends: that errs on the safe side."""
        try:
            await self.store.settle(settlement)
        except StoreError:
            task = asyncio.get_running_loop().create_task(self._resend(ctx, settlement))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)

    async def _resend(self, ctx: RequestContext, settlement: Settlement) -> None:
        error: StoreError | None = None
        for delay in _RESEND_AFTER_S:
            await asyncio.sleep(delay)
            try:
                await self.store.settle(settlement)
                return
            except StoreError as exc:
                error = exc
        log.warning("request %s: limits not settled: %s", ctx.request_id, error)

    def _store_failed(self, ctx: RequestContext, plan: LimitPlan, exc: StoreError) -> None:
        log.warning("request %s: limits store unavailable: %s", ctx.request_id, exc)
        if plan.block_on_store_error:
            raise GatewayError(errors.LIMITS_STORE_UNAVAILABLE, detail=str(exc)) from exc
        ctx.decisions.append(Decision(Step.LIMITS, "allow", errors.LIMITS_STORE_UNAVAILABLE.code))


def _refusal(rule: RateLimit | None, retry_us: float) -> GatewayError:
    """429 with retry-after; ``rule`` None: a budget refused."""
    retry_s = max(1, math.ceil(retry_us / 1e6))
    headers = {"retry-after": str(retry_s), "retry-after-ms": str(max(1, round(retry_us / 1e3)))}
    if rule is None:
        return GatewayError(
            errors.LIMITS_BUDGET_EXHAUSTED,
            f"This workflow's cost budget is spent; it resets in {retry_s}s.",
            headers=headers,
        )
    return GatewayError(
        errors.LIMITS_RATE_EXCEEDED,
        f"Rate limit reached: {rule.name} {rule.limit} per {rule.per}; retry in {retry_s}s.",
        headers=headers,
    )


def _answers_bought(policy: CompiledPolicy, chain: tuple[str, ...]) -> int:
    """How many answers one request may pay for: one, or with quality checks that fall back
    to the next model, one per model of the chain (each refused answer was paid for)."""
    fallback = policy.source.fallback
    if policy.quality is not None and any(t in ANSWER_TRIGGERS for t in fallback.on):
        return len(chain)
    return 1


def _used(ctx: RequestContext, grant: Grant) -> tuple[int, int]:
    """The tokens to pay for. Reported usage when the provider gave it. Otherwise: nothing
    if no answer came; the input estimate and one token per relayed event for a stream cut
    short; the whole reservation for an answer that did not say."""
    if ctx.model_used is None:
        return 0, 0
    if ctx.discarded and not ctx.streamed and ctx.tokens_in is ctx.tokens_out is None:
        return 0, 0  # the last answer was refused by a quality check: counted as discarded
    tokens_in = ctx.tokens_in if ctx.tokens_in is not None else grant.in_estimate
    if ctx.streamed and ctx.stream_end != "completed":
        return tokens_in, min(grant.out or grant.events, max(ctx.tokens_out or 0, grant.events))
    return tokens_in, ctx.tokens_out if ctx.tokens_out is not None else grant.out
