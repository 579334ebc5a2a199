"""The provider interface: a normalized request in, a response or an event stream out.

Shaped like an httpx transport: one ``send`` and ``aclose``. A provider owns its wire
translation and never mutates the request it is given, so retries and fallbacks can send the
same request again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from gateway.normalized import Api, NormalizedRequest

__all__ = ["Provider", "StoredState", "Timeouts", "UpstreamFailure", "UpstreamResponse"]

# ``too_large``: an answer or one event over gateway.yaml ``upstream`` bounds.
FailureKind = Literal["connect", "timeout", "status", "broken", "too_large", "config", "circuit"]


@dataclass(slots=True)
class Timeouts:
    """``deadline`` is an absolute ``loop.time()`` shared by every attempt of one request.
    Never changed once made; not ``frozen``, which made one per request cost 0.7 µs
    instead of 0.3."""

    connect: float
    read: float | None
    deadline: float


class UpstreamFailure(Exception):
    """A failed attempt, mapped once from the HTTP client's exceptions at the call site."""

    def __init__(
        self,
        kind: FailureKind,
        detail: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.body = body
        self.content_type = content_type

    @property
    def retryable(self) -> bool:
        """Connect errors, timeouts, 429, 500-504 and Anthropic's 529 (overloaded) may
        succeed on another try."""
        if self.kind in ("connect", "timeout"):
            return True
        return self.kind == "status" and self.status in (429, 500, 502, 503, 504, 529)

    @property
    def try_next_model(self) -> bool:
        """Worth another model: anything but the request itself being refused or bad config."""
        return self.retryable or self.kind in ("broken", "too_large", "circuit")

    @property
    def upstream_fault(self) -> bool:
        """The provider failed (what the circuit breaker counts), not the request or our
        configuration."""
        return self.kind in ("connect", "timeout", "broken", "too_large") or (
            self.kind == "status"
            and self.status is not None
            and (self.status == 429 or self.status >= 500)
        )


@dataclass(slots=True)
class UpstreamResponse:
    """A successful answer: a whole body, or SSE ``events`` each delivered whole. ``data``
    is ``body`` as the HTTP client parsed it to check it is JSON (None: not parsed), so the
    surface reading the answer does not parse it again."""

    status: int
    content_type: str
    body: bytes | None = None
    events: AsyncIterator[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    data: Any = None

    async def aclose(self) -> None:
        if self.events is not None:
            aclose = getattr(self.events, "aclose", None)
            if aclose is not None:
                await aclose()


class Provider(Protocol):
    name: str

    def speaks(self, api: Api) -> bool:
        """Whether this provider can take requests in ``api``'s wire format."""
        ...

    async def send(
        self, request: NormalizedRequest, upstream_model: str, timeouts: Timeouts
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class StoredState(Protocol):
    """A provider that keeps responses for the client (OpenAI's ``/responses/{id}``)."""

    async def stored(self, method: str, path: str, timeouts: Timeouts) -> UpstreamResponse:
        """``method`` on ``path`` (under the provider's base URL), relayed as it answers."""
        ...
