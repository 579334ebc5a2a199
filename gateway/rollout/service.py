"""The rollout at run time: the switches every instance obeys (pauses, aborted canaries), the
canaries' signals and the automatic abort.

One task per instance (``run``) polls the switches every 250 ms (gateway/rollout/flags.py),
flushes the signals counted since the last poll (gateway/rollout/signals.py) and, once a
second, judges every canary with ``abort_on`` on its window's totals (gateway/rollout/judge.py).
With Redis the totals are every instance's, so all of them reach the same verdict; the first
to write the abort records it (audit, metric, webhook) and every instance drops the canary to
0% at its next poll.

A request adds to the signals when its audit step ends (``note``, through the step observer):
a few dict updates, no I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import orjson

from gateway import errors
from gateway.audit.writer import AuditWriter
from gateway.auth.principal import Principal
from gateway.config import GatewayConfig, ModelConfig
from gateway.context import RequestContext, StepObserver
from gateway.observe.metrics import Metrics
from gateway.observe.observer import Observer, request_cost
from gateway.observe.signals import Sample
from gateway.policy.compile import CompiledPolicy
from gateway.policy.registry import PolicyRegistry
from gateway.review.webhook import sign
from gateway.rollout.assign import NO_FLAGS, Flags
from gateway.rollout.events import event_record
from gateway.rollout.flags import EMPTY, FileFlags, FlagStore, RedisFlags, Snapshot, entry
from gateway.rollout.judge import Crossing, judge, p95
from gateway.rollout.signals import (
    MemorySignals,
    RedisSignals,
    SignalStore,
    Tally,
    latency_field,
    slice_of,
)
from gateway.rollout.spec import AbortOn
from gateway.steps import Step, decide
from gateway.stores.redis import RedisClient, StoreError, open_redis

__all__ = ["Rollout", "RolloutObserver", "build_rollout"]

log = logging.getLogger("gateway.rollout")

_AUDIT = Step.AUDIT  # read at every step: a module constant, as in observe/observer.py

POLL_S = 0.25
JUDGE_S = 1.0
_PAUSED = errors.POLICY_PAUSED.code


@dataclass(frozen=True, slots=True)
class _Canary:
    """A workflow's canary as loaded now: both versions and its thresholds."""

    workflow: str
    live: CompiledPolicy
    candidate: CompiledPolicy

    @property
    def abort_on(self) -> AbortOn | None:
        rollout = self.candidate.source.rollout
        return rollout.abort_on if rollout is not None else None


class Rollout:
    """Built once in app.py; ``flags`` is what the pipeline's resolve step reads."""

    def __init__(
        self,
        registry: PolicyRegistry,
        flags: FlagStore,
        signals: SignalStore,
        writer: AuditWriter | None,
        metrics: Metrics | None,
        models: Mapping[str, ModelConfig],
        environ: Mapping[str, str],
        poll_s: float = POLL_S,
        redis: RedisClient | None = None,
        judge_s: float = JUDGE_S,
    ) -> None:
        """``redis``: the client ``flags`` and ``signals`` share, closed by ``aclose``."""
        self._registry = registry
        self._redis = redis
        self._flags = flags
        self._signals = signals
        self._writer = writer
        self._metrics = metrics
        self._models = models
        self._environ = environ
        self._poll_s = poll_s
        self._judge_s = judge_s
        self._tally = Tally()
        self._next_judge = 0.0
        self._failing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.flags: Flags = NO_FLAGS
        self.snapshot: Snapshot = EMPTY
        # The last window read per canary: {workflow: {"live": counts, "candidate": counts}}.
        self.windows: dict[str, dict[str, dict[str, float]]] = {}

    # -- the request path -------------------------------------------------------------------

    def observing(self, first: StepObserver | None) -> StepObserver:
        """The step observer that tells ``first`` (metrics, logs) and then this service. The
        gateway's ``Observer`` takes ``note`` as its last finisher: each step a request leaves
        is then one call, not two (a dozen per request)."""
        if isinstance(first, Observer):
            first.finish_with(lambda ctx, _verdict, _seconds: self.note(ctx))
            return first
        return RolloutObserver(first, self)

    def note(self, ctx: RequestContext) -> None:
        """A finished request: its version's metric, and its sample if a canary judges it."""
        policy = ctx.policy
        if policy is None or ctx.workflow is None:
            return
        current = self._registry.current
        name = policy.name
        live = current.policies.get(name)
        enforced = current.enforced.get(name)
        candidate = current.candidates.get(name)
        if enforced is not None and (
            policy is enforced
            or (policy.version == enforced.version != getattr(live, "version", None))
        ):
            arm = "candidate"
        else:
            arm = "live"
        if self._metrics is not None:
            shown = (live is not None and policy.version == live.version) or (
                candidate is not None and policy.version == candidate.version
            )  # not a set of the two versions: a comprehension per request
            version = policy.version if shown else "other"
            self._metrics.version_requests.add((name, version, arm))
        if enforced is None or live is None:
            return
        rollout = enforced.source.rollout
        abort_on = rollout.abort_on if rollout is not None else None
        if abort_on is None or any(d.code == _PAUSED for d in ctx.decisions):
            return
        version = enforced.version if arm == "candidate" else live.version
        self._tally.add(
            (name, version, *slice_of(time.time(), abort_on.window_s)), _sample(ctx, self._models)
        )

    # -- the poll ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll until cancelled; a store that fails keeps the last switches read."""
        while True:
            await asyncio.sleep(self._poll_s)
            await self.poll()

    async def poll(self) -> None:
        try:
            await self.refresh()
            await self._flush()
            if (now := time.monotonic()) >= self._next_judge:
                self._next_judge = now + self._judge_s
                await self._judge_all()
            self._failing = False
        except StoreError as exc:
            if not self._failing:  # once per outage, not every poll
                log.error("rollout state unavailable, the last switches read stay: %s", exc)
            self._failing = True

    async def refresh(self) -> None:
        """Read the switches now (start-up, and after writing one)."""
        snapshot = await self._flags.read()
        self.snapshot = snapshot
        self.flags = Flags(
            {w: str(e.get("reason", "paused")) for w, e in snapshot.paused.items()},
            frozenset(snapshot.aborted),
        )

    async def _flush(self) -> None:
        for (workflow, version, length, index), counts in self._tally.take().items():
            await self._signals.add(workflow, version, length, index, counts)

    def canaries(self) -> list[_Canary]:
        current = self._registry.current
        return [
            _Canary(name, live, enforced)
            for name, enforced in sorted(current.enforced.items())
            if (live := current.policies.get(name)) is not None
        ]

    async def _judge_all(self) -> None:
        for canary in self.canaries():
            abort_on = canary.abort_on
            if abort_on is None:
                continue
            length, index = slice_of(time.time(), abort_on.window_s)
            name, version = canary.workflow, canary.candidate.version
            candidate = await self._signals.window(name, version, length, index)
            live = await self._signals.window(name, canary.live.version, length, index)
            self.windows[name] = {"candidate": candidate, "live": live}
            if (name, version) in self.flags.aborted:
                continue
            if (crossing := judge(abort_on, candidate, live)) is not None:
                await self._abort(canary, abort_on, crossing)

    async def _abort(self, canary: _Canary, abort_on: AbortOn, crossing: Crossing) -> None:
        name, version = canary.workflow, canary.candidate.version
        figures = crossing.as_dict()
        won = await self._flags.abort(name, version, entry(version=version, **figures))
        await self.refresh()
        if not won:
            return  # another instance crossed first and records it
        log.warning(
            "canary %s %s aborted: %s %.4g against live %.4g (limit %.4g, z %.1f)",
            name, version, crossing.signal, crossing.candidate, crossing.live,
            crossing.limit, crossing.z,
        )  # fmt: skip
        if self._metrics is not None:
            self._metrics.rollout_aborts.add((name, crossing.signal))
        await self._record(
            event_record(
                name, version, None, errors.ROLLOUT_ABORTED, "abort",
                live_version=canary.live.version, **figures,
            )
        )  # fmt: skip
        if abort_on.webhook is not None:
            body = {
                "event": "rollout.aborted",
                "workflow": name,
                "candidate_version": version,
                "live_version": canary.live.version,
                **figures,
            }
            self._spawn(self._notify(abort_on, body))

    # -- operators --------------------------------------------------------------------------

    async def pause(self, workflow: str, reason: str, actor: Principal | None) -> dict[str, Any]:
        """Pause ``workflow`` on every instance; raises StoreError if it could not be written."""
        value = entry(reason=reason, by=actor.subject if actor else None)
        await self._flags.pause(workflow, value)
        await self.refresh()
        await self._record(
            event_record(
                workflow, self._version(workflow), actor, errors.ROLLOUT_PAUSED, "pause",
                reason=reason,
            )
        )  # fmt: skip
        return value

    async def resume(self, workflow: str, actor: Principal | None) -> bool:
        """Resume ``workflow``; whether it was paused at run time (a ``mode: paused`` file
        stays paused until the file changes)."""
        was = await self._flags.resume(workflow)
        await self.refresh()
        if was:
            await self._record(
                event_record(
                    workflow, self._version(workflow), actor, errors.ROLLOUT_RESUMED, "resume"
                )
            )
        return was

    def status(self) -> list[dict[str, Any]]:
        """Every workflow's rollout as the admin API shows it."""
        current = self._registry.current
        out = []
        for name, live in sorted(current.policies.items()):
            candidate = current.candidates.get(name)
            rollout = candidate.source.rollout if candidate is not None else None
            row: dict[str, Any] = {
                "workflow": name,
                "live_version": live.version,
                "paused": self.snapshot.paused.get(name),
                "mode_paused": live.source.mode == "paused",
            }
            if candidate is not None:
                aborted = self.snapshot.aborted.get((name, candidate.version))
                row["candidate"] = {
                    "version": candidate.version,
                    "percent": rollout.percent if rollout is not None else 0,
                    "effective_percent": 0
                    if aborted is not None or rollout is None
                    else rollout.percent,
                    "key": rollout.key if rollout is not None else None,
                    "aborted": aborted,
                }
                if (windows := self.windows.get(name)) is not None:
                    row["candidate"]["window"] = {
                        side: _summary(counts) for side, counts in windows.items()
                    }
            out.append(row)
        return out

    def _version(self, workflow: str) -> str | None:
        live = self._registry.current.policies.get(workflow)
        return live.version if live is not None else None

    async def _record(self, record: Any) -> None:
        if self._writer is not None and not await self._writer.put(record):
            log.error("rollout event %s could not be recorded", record.request_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro, name="rollout-webhook")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self, abort_on: AbortOn, payload: dict[str, Any]) -> None:
        """POST the abort to ``abort_on.webhook``, signed, three attempts with backoff."""
        assert abort_on.webhook is not None
        secret = self._environ.get(abort_on.webhook_secret_env or "", "")
        if not secret:
            log.error("rollout webhook secret %s is not set", abort_on.webhook_secret_env)
        body = orjson.dumps(payload)
        import aiohttp  # only when a webhook is configured: a third of a second of start-up

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            for attempt in range(3):
                headers = {
                    "content-type": "application/json",
                    "x-gateway-signature": sign(secret.encode(), body, int(time.time())),
                }
                try:
                    async with session.post(abort_on.webhook, data=body, headers=headers) as resp:
                        await resp.read()
                        if 200 <= resp.status < 300:
                            return
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    log.warning("rollout webhook attempt %d: %s", attempt + 1, type(exc).__name__)
                await asyncio.sleep(2**attempt)
        log.error("rollout webhook gave up: %s", payload.get("workflow"))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()


class RolloutObserver:
    """A ``StepObserver``: tells ``first`` of every step, and the rollout of finished requests."""

    __slots__ = ("_first", "_rollout")

    def __init__(self, first: StepObserver | None, rollout: Rollout) -> None:
        self._first = first
        self._rollout = rollout

    def left(self, ctx: RequestContext, step: Step, seconds: float) -> None:
        if self._first is not None:
            self._first.left(ctx, step, seconds)
        if step is _AUDIT:
            self._rollout.note(ctx)


def _sample(ctx: RequestContext, models: Mapping[str, ModelConfig]) -> dict[str, float]:
    boundary = ctx.boundary
    reasons = [d.code for d in ctx.decisions if d.code is not None]
    cost = request_cost(ctx, models)
    sample = Sample.of(
        reasons,
        {"request": boundary.request, "answer": boundary.answer} if boundary else None,
        ctx.fallback is not None,
        ctx.review,
        ctx.tokens_out,
        cost,
        perf_counter() - ctx.started,
    )
    block, refusal, _, _, fallback, review = sample.hits
    counts = {
        "requests": 1.0,
        latency_field(sample.latency_s): 1.0,
        "cost": cost,
        "cost_sq": cost * cost,
    }
    if decide(ctx.decisions).decision == "error":
        counts["errors"] = 1.0
    for name, hit in (
        ("blocks", block),
        ("refusals", refusal),
        ("fallbacks", fallback),
        ("reviews", review),
    ):
        if hit:
            counts[name] = 1.0
    return counts


def _summary(counts: Mapping[str, float]) -> dict[str, float]:
    n = counts.get("requests", 0.0)
    if not n:
        return {"requests": 0}
    return {
        "requests": int(n),
        "error_rate": counts.get("errors", 0.0) / n,
        "refusal_rate": counts.get("refusals", 0.0) / n,
        "fallback_rate": counts.get("fallbacks", 0.0) / n,
        "block_rate": counts.get("blocks", 0.0) / n,
        "review_rate": counts.get("reviews", 0.0) / n,
        "latency_p95": p95(dict(counts)),
        "cost_per_request": counts.get("cost", 0.0) / n,
    }


def build_rollout(
    config: GatewayConfig,
    registry: PolicyRegistry,
    writer: AuditWriter | None,
    metrics: Metrics | None,
    environ: Mapping[str, str],
) -> Rollout:
    """Shared through Redis with ``stores.redis_url`` (bounded like the breaker: a poll that
    gets no answer in 250 ms keeps the last switches), else the policies folder and memory."""
    url = config.stores.redis_url
    if url is None:
        folder = config.path(config.policies_dir)
        return Rollout(
            registry, FileFlags(folder), MemorySignals(), writer, metrics, config.models, environ
        )
    client = open_redis(url, user="rollout", prefix=config.stores.key_prefix, timeout_s=0.25)
    return Rollout(
        registry,
        RedisFlags(client),
        RedisSignals(client),
        writer,
        metrics,
        config.models,
        environ,
        redis=client,
    )
