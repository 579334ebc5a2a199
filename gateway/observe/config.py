"""gateway.yaml ``observe``: metrics, access logs and traces (docs/observability.md).

A leaf module (pydantic only), so ``gateway.config`` can hold it without importing the
observers themselves.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AccessLogConfig", "DriftConfig", "MetricsConfig", "ObserveConfig", "TracingConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MetricsConfig(_Strict):
    """Prometheus metrics. ``expose``: ``open`` serves ``GET /metrics`` on the gateway's own
    listener to anyone, ``admin`` only to a caller with the admin role, ``port`` on a listener
    of its own (``host``:``port``) and not on the gateway's."""

    enabled: bool = True
    expose: Literal["open", "admin", "port"] = "open"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] | None = None
    # Label values outside these bounds read "other": a workflow not loaded, a model not in
    # the catalogue. Extra names that may appear as labels although not loaded (none by default).
    extra_workflows: list[Annotated[str, Field(min_length=1, max_length=64)]] = []

    @model_validator(mode="after")
    def _port_for_port(self) -> MetricsConfig:
        if self.expose == "port" and self.port is None:
            raise ValueError("expose: port needs a port")
        return self


class AccessLogConfig(_Strict):
    """One line per request on the ``gateway.access`` logger; ``format`` is the default of
    ``gateway serve --log-format``."""

    enabled: bool = True
    level: Literal["debug", "info", "warning"] = "info"
    format: Literal["text", "json"] = "text"


class TracingConfig(_Strict):
    """OpenTelemetry spans exported by OTLP/HTTP (protobuf, encoded by the gateway: no extra
    package). A collector that is down or slow never delays a request: a finished request's
    spans wait in a bounded queue of ``queue_max`` spans, whole, and the ones that do not fit
    are dropped and counted; an export sends about ``batch_max`` spans (requests whole)."""

    enabled: bool = False
    endpoint: str = "http://127.0.0.1:4318/v1/traces"
    service_name: str = "llm-data-gateway"
    sample_ratio: Annotated[float, Field(ge=0, le=1)] = 1.0
    queue_max: Annotated[int, Field(ge=1, le=1_000_000)] = 2048
    batch_max: Annotated[int, Field(ge=1, le=100_000)] = 512
    export_timeout_ms: Annotated[float, Field(gt=0, le=60_000)] = 2000.0


class DriftConfig(_Strict):
    """Rolling baselines per workflow and policy version: a signal's drift score compares its
    rate over the last ``short_window`` requests with the last ``long_window``; below
    ``min_samples`` requests in the short window the score is 0 (quiet workflows never alarm)."""

    enabled: bool = True
    short_window: Annotated[int, Field(ge=10, le=100_000)] = 200
    long_window: Annotated[int, Field(ge=100, le=1_000_000)] = 5000
    min_samples: Annotated[int, Field(ge=1)] = 100

    @model_validator(mode="after")
    def _short_below_long(self) -> DriftConfig:
        if self.short_window >= self.long_window:
            raise ValueError("short_window must be below long_window")
        return self


class ObserveConfig(_Strict):
    metrics: MetricsConfig = MetricsConfig()
    access_log: AccessLogConfig = AccessLogConfig()
    tracing: TracingConfig = TracingConfig()
    drift: DriftConfig = DriftConfig()
    # The environment variable holding the HMAC key of the prompt and tool fingerprints;
    # unset, fingerprints are plain SHA-256 (gateway/observe/fingerprints.py).
    fingerprint_key_env: str = "GATEWAY_FINGERPRINT_KEY"
