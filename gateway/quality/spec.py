"""The policy's ``quality`` section: checks every completed answer must pass
(docs/quality-and-fallbacks.md). Compiled once at load by gateway/quality/rules.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["QualityPolicy"]


class QualityPolicy(BaseModel):
    """A check that is not set is not run.

    ``min_avg_logprob``: the mean token log-probability of each choice must reach it (OpenAI's
    API; the gateway asks for logprobs and strips them when the client did not).
    ``json_schema``: a JSON Schema file, relative to the policies folder, that the answer text
    must parse as and validate against. ``must_match`` / ``must_not_match``: regexes the answer
    must / must not contain. ``max_refusal``: the largest share of the answer (in characters)
    that refusal sentences may make up; an answer that is only a refusal is 1.0.
    ``streaming``: ``buffer`` holds a streamed answer until it is checked; ``pass`` relays it
    unchecked (recorded as ``quality.unchecked``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_avg_logprob: Annotated[float, Field(le=0)] | None = None
    json_schema: Annotated[str, Field(min_length=1)] | None = None
    must_match: list[Annotated[str, Field(min_length=1)]] = []
    must_not_match: list[Annotated[str, Field(min_length=1)]] = []
    max_refusal: Annotated[float, Field(ge=0, lt=1)] | None = None
    streaming: Literal["buffer", "pass"] = "buffer"
