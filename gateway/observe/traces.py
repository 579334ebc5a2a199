"""OpenTelemetry spans of each request, exported by OTLP/HTTP (``observe.tracing``).

The spans are made when the request is finished, from what it recorded: the request span,
one span per step (``ctx.timings``, contiguous from the arrival), one per upstream attempt
(``ctx.attempt_log``) and a guardrail span for the data boundary and one for the quality
checks. Attributes follow the GenAI semantic conventions (``gen_ai.*``); never a prompt or an
answer. A W3C ``traceparent`` from the client is the parent; the gateway's request span is the
parent it sends upstream (``gateway/upstream/http.py`` reads ``OUTBOUND_TRACEPARENT``).

Export never delays a request: finished spans go into a bounded queue that a thread of its
own sends from; spans that do not fit are dropped and counted (``gateway_spans_dropped``).
Needs ``pip install llm-data-gateway[otel]``.
"""

from __future__ import annotations

import logging
import queue
import random
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from gateway.context import RequestContext
from gateway.observe.config import TracingConfig
from gateway.observe.labels import Labels
from gateway.observe.metrics import Metrics
from gateway.steps import Step, Verdict
from gateway.upstream.http import OUTBOUND_TRACEPARENT
from gateway.yamlsource import ConfigError, Problem

__all__ = ["Tracing", "parse_traceparent"]

log = logging.getLogger("gateway.observe")

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_OPERATION = {"chat": "chat", "messages": "chat", "responses": "chat", "embeddings": "embeddings"}
_PROVIDER = {"openai": "openai", "anthropic": "anthropic"}


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
    trace_id: int
    span_id: int  # the request span's, sent upstream as the parent
    parent: int | None  # the client's span, if it sent one
    sampled: bool


class Tracing:
    """Builds the spans of finished requests and exports them from a thread."""

    def __init__(
        self,
        config: TracingConfig,
        labels: Labels,
        metrics: Metrics | None,
        providers: Mapping[str, str],
    ) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import ReadableSpan
            from opentelemetry.sdk.util.instrumentation import InstrumentationScope
            from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
        except ImportError:
            raise ConfigError(
                [
                    Problem(
                        "observe.tracing",
                        0,
                        "tracing needs OpenTelemetry: pip install 'llm-data-gateway[otel]'",
                    )
                ]
            ) from None
        self._otel: dict[str, Any] = {
            "ReadableSpan": ReadableSpan,
            "SpanContext": SpanContext,
            "SpanKind": SpanKind,
            "Status": Status,
            "StatusCode": StatusCode,
            "TraceFlags": TraceFlags,
        }
        self._config = config
        self._labels = labels
        self._metrics = metrics
        self._providers = providers  # model -> provider type
        self._ratio = config.sample_ratio
        self._resource = Resource.create({"service.name": config.service_name})
        self._scope = InstrumentationScope("llm-data-gateway")
        self._exporter = OTLPSpanExporter(
            endpoint=config.endpoint, timeout=config.export_timeout_ms / 1000
        )
        self._queue: queue.Queue[Any] = queue.Queue(config.queue_max)
        self.dropped = 0
        self.exported = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._export_forever, daemon=True, name="otlp")
        self._thread.start()

    # -- the request path: two cheap calls -------------------------------------------------

    def begin(self, ctx: RequestContext, traceparent: str | None) -> None:
        """The request's trace: the client's, or a new one sampled at ``sample_ratio``."""
        parent = parse_traceparent(traceparent)
        if parent is not None:
            trace_id, parent_id, sampled = parent
        else:
            trace_id, parent_id = random.getrandbits(128) or 1, None
            sampled = self._ratio >= 1.0 or random.random() < self._ratio
        span_id = random.getrandbits(64) or 1
        ctx.trace = _Trace(trace_id, span_id, parent_id, sampled)
        ctx.trace_id = f"{trace_id:032x}"
        flags = "01" if sampled else "00"
        OUTBOUND_TRACEPARENT.set(f"00-{trace_id:032x}-{span_id:016x}-{flags}")

    def finish(self, ctx: RequestContext, verdict: Verdict, seconds: float) -> None:
        trace = ctx.trace
        if not isinstance(trace, _Trace) or not trace.sampled:
            return
        for span in self._spans(ctx, trace, verdict, seconds):
            try:
                self._queue.put_nowait(span)
            except queue.Full:
                self.dropped += 1
                if self._metrics is not None:
                    self._metrics.spans_dropped.add(())

    # -- building spans ---------------------------------------------------------------------

    def _spans(
        self, ctx: RequestContext, trace: _Trace, verdict: Verdict, seconds: float
    ) -> list[Any]:
        o = self._otel
        # perf_counter -> epoch nanoseconds, by the request's arrival
        epoch0 = time.time_ns() - int((perf_counter() - ctx.started) * 1e9)

        def ns(t: float) -> int:
            return epoch0 + int((t - ctx.started) * 1e9)

        flags = o["TraceFlags"](o["TraceFlags"].SAMPLED)

        def context(span_id: int) -> Any:
            return o["SpanContext"](trace.trace_id, span_id, is_remote=False, trace_flags=flags)

        def span(
            name: str,
            span_id: int,
            parent: int | None,
            start: int,
            end: int,
            attributes: dict[str, Any],
            kind: Any = None,
            error: bool = False,
        ) -> Any:
            return o["ReadableSpan"](
                name,
                context=context(span_id),
                parent=context(parent) if parent is not None else None,
                resource=self._resource,
                attributes=attributes,
                kind=kind if kind is not None else o["SpanKind"].INTERNAL,
                status=o["Status"](o["StatusCode"].ERROR if error else o["StatusCode"].UNSET),
                start_time=start,
                end_time=end,
                instrumentation_scope=self._scope,
            )

        labels, policy, request = self._labels, ctx.policy, ctx.request
        requested = labels.model(request.model if request is not None else None)
        used = labels.model(ctx.model_used)
        operation = _OPERATION.get(ctx.endpoint, ctx.endpoint)
        root_attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": requested,
            "gateway.request_id": ctx.request_id,
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
        end = ctx.started + seconds
        spans = [
            span(
                f"{operation} {requested}",
                trace.span_id,
                trace.parent,
                ns(ctx.started),
                ns(end),
                root_attrs,
                kind=o["SpanKind"].SERVER,
                error=verdict.outcome == "error",
            )
        ]
        t = ctx.started
        forward_id = None
        for step, took in ctx.timings:
            if step is Step.GATEWAY:
                t += took
                continue
            step_id = random.getrandbits(64) or 1
            if step is Step.FORWARD and forward_id is None:
                forward_id = step_id
            spans.append(
                span(
                    f"gateway.{step.value}",
                    step_id,
                    trace.span_id,
                    ns(t),
                    ns(t + took),
                    {"gateway.step": step.value},
                )
            )
            t += took
        for model, started, ended, failed in ctx.attempt_log:
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": operation,
                "gen_ai.request.model": labels.model(model),
                "gen_ai.provider.name": self._providers.get(model, "other"),
            }
            if failed is not None:
                attrs["error.type"] = failed
            spans.append(
                span(
                    f"{operation} {labels.model(model)}",
                    random.getrandbits(64) or 1,
                    forward_id or trace.span_id,
                    ns(started),
                    ns(ended),
                    attrs,
                    kind=o["SpanKind"].CLIENT,
                    error=failed is not None,
                )
            )
        spans.extend(self._guardrails(ctx, trace, span, ns, verdict))
        return spans

    def _guardrails(
        self, ctx: RequestContext, trace: _Trace, span: Any, ns: Any, verdict: Verdict
    ) -> list[Any]:
        """A span for the data boundary and one for the quality checks, where they ran."""
        out = []
        policy = ctx.policy
        version = policy.version if policy is not None else "none"
        starts: dict[Step, tuple[float, float]] = {}
        t = ctx.started
        for step, took in ctx.timings:
            if step not in starts:
                starts[step] = (t, t + took)
            t += took
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
            start, end = starts[Step.BOUNDARY]
            out.append(
                span(
                    "guardrail data_boundary",
                    random.getrandbits(64) or 1,
                    trace.span_id,
                    ns(start),
                    ns(end),
                    attrs,
                )
            )
        if Step.QUALITY in starts:
            decided = [d for d in ctx.decisions if d.step is Step.QUALITY]
            worst = max((d.outcome for d in decided), key=_RANK.__getitem__, default="allow")
            codes = [self._labels.reason(d.code) for d in decided if d.code]
            start, end = starts[Step.QUALITY]
            out.append(
                span(
                    "guardrail quality",
                    random.getrandbits(64) or 1,
                    trace.span_id,
                    ns(start),
                    ns(end),
                    {
                        "gateway.guardrail.name": "quality",
                        "gateway.policy.version": version,
                        "gateway.guardrail.verdict": worst,
                        "gateway.guardrail.rules": codes,
                    },
                )
            )
        return out

    # -- the export thread ------------------------------------------------------------------

    def _export_forever(self) -> None:
        batch_max = self._config.batch_max
        while not self._stop.is_set() or not self._queue.empty():
            try:
                first = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            # Wait for a fuller batch (an export costs the same Python work for one span or
            # hundreds), unless stopping.
            batch = [first]
            deadline = time.monotonic() + _BATCH_DELAY_S
            while len(batch) < batch_max:
                left = deadline - time.monotonic()
                try:
                    if left <= 0 or self._stop.is_set():
                        batch.append(self._queue.get_nowait())
                    else:
                        batch.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
            try:
                result = self._exporter.export(batch)
            except Exception:  # the collector's problem must never end the export thread
                log.warning("OTLP export failed", exc_info=True)
                continue
            if getattr(result, "name", "") == "SUCCESS":
                self.exported += len(batch)

    def close(self, timeout_s: float = 2.0) -> None:
        """Send what is queued (for at most ``timeout_s``), then stop."""
        self._stop.set()
        self._thread.join(timeout_s)
        self._exporter.shutdown()  # type: ignore[no-untyped-call]


_BATCH_DELAY_S = 1.0
_RANK = {"allow": 0, "transform": 1, "deny": 2, "error": 3}
