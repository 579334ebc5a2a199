"""OpenTelemetry spans of each request, exported by OTLP/HTTP (``observe.tracing``).

The spans are made when the request is finished, from what it recorded: the request span,
one span per step (``ctx.timings``, contiguous from the arrival), one per upstream attempt
(``ctx.attempt_log``) and a guardrail span for the data boundary and one for the quality
checks. Attributes follow the GenAI semantic conventions (``gen_ai.*``); never a prompt or an
answer. A W3C ``traceparent`` from the client is the parent; the gateway's request span is the
parent it sends upstream (``gateway/upstream/http.py`` reads ``OUTBOUND_TRACEPARENT``).

A request that is not sampled costs two random draws and its ``traceparent``: no span, no
attribute. A sampled one is encoded at once into OTLP protobuf (gateway/observe/otlp.py).

Export never delays a request: a finished request's spans go into a bounded queue that a
thread of its own sends from, about once a second; spans that do not fit are dropped and
counted (``gateway_spans_dropped``).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from gateway.context import RequestContext
from gateway.observe import otlp
from gateway.observe.config import TracingConfig
from gateway.observe.labels import Labels
from gateway.observe.metrics import Metrics
from gateway.steps import Step, Verdict
from gateway.upstream.http import OUTBOUND_TRACEPARENT

__all__ = ["Tracing", "parse_traceparent"]

log = logging.getLogger("gateway.observe")

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_OPERATION = {"chat": "chat", "messages": "chat", "responses": "chat", "embeddings": "embeddings"}
_SCOPE = "llm-data-gateway"
# A step span's name and attribute never change: encoded once.
_STEP_SPAN = {
    step: (otlp.name_field(f"gateway.{step.value}"), otlp.attributes({"gateway.step": step.value}))
    for step in Step
}
# Looked up once: an enum member read from its class costs a few attribute reads each time.
_GATEWAY, _FORWARD = Step.GATEWAY, Step.FORWARD
_BATCH_DELAY_S = 1.0  # the export thread's sleep between sends, unless a batch fills first


def parse_traceparent(value: str | None) -> tuple[int, int, bool] | None:
    """(trace id, parent span id, sampled) of a valid W3C ``traceparent``; else None."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, bool(int(match.group(3), 16) & 1)


@dataclass(slots=True)
class _Trace:
    """A sampled request's trace (an unsampled one keeps none)."""

    trace_id: int
    span_id: int  # the request span's, sent upstream as the parent
    parent: int | None  # the client's span, if it sent one


class Tracing:
    """Builds the spans of finished requests and exports them from a thread."""

    def __init__(
        self,
        config: TracingConfig,
        labels: Labels,
        metrics: Metrics | None,
        providers: Mapping[str, str],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config
        self._labels = labels
        self._metrics = metrics
        self._providers = providers  # model -> provider type
        self._ratio = config.sample_ratio
        self._sender = otlp.Sender(config.endpoint, config.export_timeout_ms / 1000, environ or {})
        # (spans, encoded spans) per request, at most queue_max spans in all
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queued = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.dropped = 0
        self.exported = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._export_forever, daemon=True, name="otlp")
        self._thread.start()

    # -- the request path: two cheap calls -------------------------------------------------

    def begin(self, ctx: RequestContext, traceparent: str | None) -> None:
        """The request's trace: the client's, or a new one sampled at ``sample_ratio``."""
        parent = parse_traceparent(traceparent) if traceparent is not None else None
        if parent is not None:
            trace_id, parent_id, sampled = parent
        else:
            trace_id, parent_id = random.getrandbits(128) or 1, None
            sampled = self._ratio >= 1.0 or random.random() < self._ratio
        span_id = random.getrandbits(64) or 1
        ctx.trace_id = hex_id = f"{trace_id:032x}"
        if sampled:
            ctx.trace = _Trace(trace_id, span_id, parent_id)
            OUTBOUND_TRACEPARENT.set(f"00-{hex_id}-{span_id:016x}-01")
        else:
            OUTBOUND_TRACEPARENT.set(f"00-{hex_id}-{span_id:016x}-00")

    def finish(self, ctx: RequestContext, verdict: Verdict, seconds: float) -> None:
        trace = ctx.trace
        if not isinstance(trace, _Trace):
            return  # not sampled
        spans = self._spans(ctx, trace, verdict, seconds)
        n = len(spans)
        with self._lock:
            fits = self._queued + n <= self._config.queue_max
            if fits:
                self._queue.append((n, b"".join(spans)))
                self._queued += n
                full = self._queued >= self._config.batch_max
        if not fits:  # a request's spans go whole or not at all
            self.dropped += n
            if self._metrics is not None:
                self._metrics.spans_dropped.add((), n)
        elif full:
            self._wake.set()

    # -- building spans (sampled requests only) --------------------------------------------

    def _spans(
        self, ctx: RequestContext, trace: _Trace, verdict: Verdict, seconds: float
    ) -> list[bytes]:
        trace_id = trace.trace_id.to_bytes(16, "big")
        started = ctx.started
        # perf_counter -> epoch nanoseconds, by the request's arrival
        epoch0 = time.time_ns() - int((perf_counter() - started) * 1e9)

        def ns(t: float) -> int:
            return epoch0 + int((t - started) * 1e9)

        labels, policy, request = self._labels, ctx.policy, ctx.request
        requested = labels.model(request.model if request is not None else None)
        used = labels.model(ctx.model_used)
        operation = _OPERATION.get(ctx.endpoint, ctx.endpoint)
        root_attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": requested,
            "gateway.workflow": labels.workflow(ctx.workflow),
            "gateway.decision": verdict.decision,
            "gateway.reasons": [labels.reason(c) for c in verdict.reasons],
            "http.request.method": ctx.method,
            "http.route": ctx.route,
        }
        if ctx.status is not None:
            root_attrs["http.response.status_code"] = ctx.status
        if policy is not None:
            root_attrs["gateway.policy.version"] = policy.version
        if ctx.model_used is not None:
            root_attrs["gen_ai.response.model"] = used
            root_attrs["gen_ai.provider.name"] = self._providers.get(ctx.model_used, "other")
        if ctx.tokens_in is not None:
            root_attrs["gen_ai.usage.input_tokens"] = ctx.tokens_in
        if ctx.tokens_out is not None:
            root_attrs["gen_ai.usage.output_tokens"] = ctx.tokens_out
        spans = [
            otlp.span(
                trace_id,
                trace.span_id,
                trace.parent,
                otlp.name_field(f"{operation} {requested}"),
                otlp.SERVER,
                ns(started),
                ns(started + seconds),
                otlp.attributes(root_attrs)
                + otlp.attributes({"gateway.request_id": ctx.request_id}, cache=False),
                error=verdict.outcome == "error",
                remote_parent=trace.parent is not None,
            )
        ]
        t = started
        forward_id = None
        starts: dict[Step, tuple[float, float]] = {}  # each step's first run
        for step, took in ctx.timings:
            if step not in starts:
                starts[step] = (t, t + took)
            if step is _GATEWAY:
                t += took
                continue
            step_id = random.getrandbits(64) or 1
            if step is _FORWARD and forward_id is None:
                forward_id = step_id
            name, attrs = _STEP_SPAN[step]
            spans.append(
                otlp.span(
                    trace_id,
                    step_id,
                    trace.span_id,
                    name,
                    otlp.INTERNAL,
                    ns(t),
                    ns(t + took),
                    attrs,
                )
            )
            t += took
        for model, begun, ended, failed in ctx.attempt_log:
            attempt: dict[str, Any] = {
                "gen_ai.operation.name": operation,
                "gen_ai.request.model": labels.model(model),
                "gen_ai.provider.name": self._providers.get(model, "other"),
            }
            if failed is not None:
                attempt["error.type"] = failed
            spans.append(
                otlp.span(
                    trace_id,
                    random.getrandbits(64) or 1,
                    forward_id or trace.span_id,
                    otlp.name_field(f"{operation} {labels.model(model)}"),
                    otlp.CLIENT,
                    ns(begun),
                    ns(ended),
                    otlp.attributes(attempt),
                    error=failed is not None,
                )
            )
        for guard, (start, end), guard_attrs in self._guardrails(ctx, starts):
            spans.append(
                otlp.span(
                    trace_id,
                    random.getrandbits(64) or 1,
                    trace.span_id,
                    otlp.name_field(guard),
                    otlp.INTERNAL,
                    ns(start),
                    ns(end),
                    otlp.attributes(guard_attrs),
                )
            )
        return spans

    def _guardrails(
        self, ctx: RequestContext, starts: Mapping[Step, tuple[float, float]]
    ) -> list[tuple[str, tuple[float, float], dict[str, Any]]]:
        """A span for the data boundary and one for the quality checks, where they ran:
        (name, (start, end), attributes)."""
        out = []
        policy = ctx.policy
        version = policy.version if policy is not None else "none"
        boundary = ctx.boundary
        if boundary is not None and Step.BOUNDARY in starts:
            decided = [d for d in ctx.decisions if d.step in (Step.BOUNDARY, Step.INSPECT_ANSWER)]
            worst = max((d.outcome for d in decided), key=_RANK.__getitem__, default="allow")
            attrs: dict[str, Any] = {
                "gateway.guardrail.name": "data_boundary",
                "gateway.policy.version": version,
                "gateway.guardrail.verdict": "shadow" if boundary.shadow and decided else worst,
                "gateway.guardrail.rules": sorted(boundary.rules),
            }
            for direction, actions in (("request", boundary.request), ("answer", boundary.answer)):
                for action, entities in actions.items():
                    attrs[f"gateway.entities.{direction}.{self._labels.action(action)}"] = sum(
                        entities.values()
                    )
            out.append(("guardrail data_boundary", starts[Step.BOUNDARY], attrs))
        if Step.QUALITY in starts:
            decided = [d for d in ctx.decisions if d.step is Step.QUALITY]
            worst = max((d.outcome for d in decided), key=_RANK.__getitem__, default="allow")
            codes = [self._labels.reason(d.code) for d in decided if d.code]
            quality = {
                "gateway.guardrail.name": "quality",
                "gateway.policy.version": version,
                "gateway.guardrail.verdict": worst,
                "gateway.guardrail.rules": codes,
            }
            out.append(("guardrail quality", starts[Step.QUALITY], quality))
        return out

    # -- the export thread ------------------------------------------------------------------

    def _take(self) -> tuple[int, list[bytes]]:
        """Queued requests' spans, up to about ``batch_max`` spans, and how many."""
        batch: list[bytes] = []
        n = 0
        with self._lock:
            while self._queue and n < self._config.batch_max:
                count, spans = self._queue.popleft()
                batch.append(spans)
                n += count
            self._queued -= n
        return n, batch

    def _export_forever(self) -> None:
        failing = False
        while True:
            # Sleep between sends (an export costs about the same for one span as for
            # hundreds), woken early by a full batch or the stop.
            stopping = self._stop.is_set()
            if not stopping:
                self._wake.wait(_BATCH_DELAY_S)
                self._wake.clear()
            while True:
                n, batch = self._take()
                if not batch:
                    break
                body = otlp.request(self._config.service_name, _SCOPE, batch)
                try:
                    status = self._sender.send(body)
                except Exception as exc:  # noqa: BLE001 - nothing a collector does ends the thread
                    status, problem = 0, str(exc) or type(exc).__name__
                else:
                    problem = f"HTTP {status}"
                if 200 <= status < 300:
                    self.exported += n
                    failing = False
                elif not failing:  # once per outage, not every batch
                    failing = True
                    log.warning("OTLP export to %s failed: %s", self._config.endpoint, problem)
            if stopping:
                return

    def close(self, timeout_s: float = 2.0) -> None:
        """Send what is queued (for at most ``timeout_s``), then stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        self._sender.close()


_RANK = {"allow": 0, "transform": 1, "deny": 2, "error": 3}
