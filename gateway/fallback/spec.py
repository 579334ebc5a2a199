"""The policy's ``fallback`` section: what the gateway answers when something on the request's
path fails (docs/quality-and-fallbacks.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.errors import Trigger  # what may set a fallback off: a property of the reason

__all__ = ["DEFAULT_TRIGGERS", "FallbackPolicy", "Trigger"]

# Without ``on``: the provider's failures, which is when fallback models were always tried.
DEFAULT_TRIGGERS: tuple[Trigger, ...] = (
    "upstream_error",
    "upstream_timeout",
    "rate_limited",
    "circuit_open",
)


class FallbackPolicy(BaseModel):
    """``models`` are tried in order after the requested one fails for a reason in ``on``;
    when they are spent (or cannot help, as for a refused request), ``message`` is the answer,
    and ``review: true`` also flags the request for manual review in its audit record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    on: Annotated[list[Trigger], Field(min_length=1)] = list(DEFAULT_TRIGGERS)
    models: list[str] = []
    message: Annotated[str, Field(min_length=1, max_length=4000)] | None = None
    review: bool = False

    @model_validator(mode="after")
    def _review_answers_with_the_message(self) -> FallbackPolicy:
        if self.review and self.message is None:
            raise ValueError("review: true answers with the fallback message: set 'message'")
        return self
