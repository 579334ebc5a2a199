"""The policy file schema: one YAML file per workflow.

Later sections (data, limits, retention, quality, fallback) are added here as they land; every
model is frozen and rejects unknown keys so a typo never silently disables a control.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.fallback.spec import FallbackPolicy
from gateway.limits.spec import LimitsPolicy
from gateway.quality.spec import QualityPolicy
from gateway.review.spec import ReviewPolicy
from gateway.rollout.spec import EvaluationPolicy, RolloutPolicy
from gateway.surfaces import SURFACES

__all__ = [
    "ENDPOINTS",
    "AccessPolicy",
    "CustomRecognizerPolicy",
    "DataAction",
    "DataPolicy",
    "EmbeddingsPolicy",
    "Endpoint",
    "Policy",
    "RetentionPolicy",
    "UpstreamPolicy",
]

WorkflowName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
EntityName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")]
Score = Annotated[float, Field(gt=0, le=1)]
# What happens to a detected value: kept, a typed placeholder, removed, a reversible token,
# or the whole request refused.
DataAction = Literal["allow", "mask", "redact", "tokenize", "block"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# The endpoints a workflow may open: each registered surface's, and the model list. A new
# surface is a new endpoint here with no edit (gateway/surfaces/__init__.py).
ENDPOINTS = (*dict.fromkeys(s.endpoint for s in SURFACES.values()), "models")


def _known_endpoint(value: str) -> str:
    if value not in ENDPOINTS:  # worded as pydantic words a Literal's error
        *most, last = (f"'{e}'" for e in ENDPOINTS)
        expected = f"{', '.join(most)} or {last}"
        raise PydanticCustomError(
            "literal_error", "Input should be {expected}", {"expected": expected}
        )
    return value


Endpoint = Annotated[str, AfterValidator(_known_endpoint)]


class AccessPolicy(_Strict):
    """Who may call the workflow, through which endpoints, with which models and features.

    Any one of ``roles`` admits the caller; ``subjects`` and ``teams``, when set, narrow that
    further (the caller must also be listed). ``max_output_tokens`` is a ceiling that always
    holds: a request that sets none is given it, one that asks for more is clamped or refused.
    """

    roles: Annotated[list[str], Field(min_length=1)]
    subjects: Annotated[list[str], Field(min_length=1)] | None = None
    teams: Annotated[list[str], Field(min_length=1)] | None = None
    models: Annotated[list[str], Field(min_length=1)]
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    on_exceed: Literal["clamp", "reject"] = "reject"
    endpoints: Annotated[list[Endpoint], Field(min_length=1)] = list(ENDPOINTS)
    allow_tools: bool = True
    # The tool names a request may offer the model; any other is refused (access.tool_denied).
    tools: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]] | None = None
    allow_streaming: bool = True


class UpstreamPolicy(_Strict):
    """How hard to try: the total deadline covers every retry and fallback model."""

    timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    connect_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    read_timeout_s: Annotated[float, Field(gt=0, le=600)] | None = None
    retries: Annotated[int, Field(ge=0, le=5)] = 2

    @model_validator(mode="before")
    @classmethod
    def _fallback_models_moved(cls, data: object) -> object:
        if isinstance(data, dict) and "fallback_models" in data:
            raise ValueError("fallback_models moved to the fallback section: fallback.models")
        return data


class CustomRecognizerPolicy(_Strict):
    """A policy's own pattern; its findings are reported as entity ``name``."""

    name: EntityName
    pattern: Annotated[str, Field(min_length=1)]
    context: list[str] = []
    score: Score = 0.8
    action: DataAction


class DataPolicy(_Strict):
    """Which data may leave for the model, and what happens to the rest (docs/data-boundary.md)."""

    entities: dict[EntityName, DataAction] = {}
    custom: list[CustomRecognizerPolicy] = []
    deny_terms: list[Annotated[str, Field(min_length=1)]] = []  # always block
    allow_list: list[str] = []
    min_score: Score = 0.5
    min_scores: dict[EntityName, Score] = {}
    scan_output: bool = True
    images: Literal["allow", "block"] = "block"
    on_detector_error: Literal["block", "allow"] = "block"
    # What the gateway cannot read as text (token ids, base64 of an unknown type).
    on_uninspectable: Literal["block", "allow"] = "block"
    # Thinking (reasoning) text: inspected (a finding in a signed block refuses, as such a
    # block cannot be masked), or refused outright.
    thinking: Literal["inspect", "refuse"] = "inspect"
    token_ttl_s: Annotated[int, Field(ge=1, le=30 * 86400)] = 86400
    stream_window_chars: Annotated[int, Field(ge=32, le=8192)] = 256
    # ``mask`` placeholders: keyed per value (<EMAIL_ADDRESS_k3j9x2>, under the vault key): the
    # same in every request of a conversation, even when earlier turns are dropped or a new
    # value comes before it, so prompt caches keep hitting; or numbered per request in prompt
    # order (<EMAIL_ADDRESS_1>), which renumbers when a client compacts its history.
    placeholders: Literal["numbered", "keyed"] = "keyed"


class EmbeddingsPolicy(_Strict):
    """``on_pii: block`` refuses an embeddings request the data policy would change (a masked
    text embeds as another text); ``mask`` (the default) embeds it as the data actions left it."""

    on_pii: Literal["block", "mask"] = "mask"


class RetentionPolicy(_Strict):
    """What the audit trail keeps of this workflow, and for how long.

    ``content: masked`` keeps the text as it left for the model (after the data boundary),
    never raw values; ``upstream_store: false`` (the default) asks the provider not to retain
    the exchange (OpenAI ``store: false``) and refuses requests that use state it kept.
    """

    audit_days: Annotated[int, Field(ge=1, le=36_500)] = 90
    content: Literal["none", "masked"] = "none"
    upstream_store: bool = False


class Policy(_Strict):
    workflow: WorkflowName
    owner: str
    description: str = ""
    # ``paused``: the workflow takes no traffic (docs/policy-lifecycle.md#pause).
    mode: Literal["enforce", "shadow", "paused"] = "enforce"
    access: AccessPolicy
    upstream: UpstreamPolicy = UpstreamPolicy()
    data: DataPolicy | None = None
    retention: RetentionPolicy = RetentionPolicy()
    embeddings: EmbeddingsPolicy = EmbeddingsPolicy()
    quality: QualityPolicy | None = None
    fallback: FallbackPolicy = FallbackPolicy()
    limits: LimitsPolicy | None = None
    review: ReviewPolicy | None = None
    rollout: RolloutPolicy | None = None
    evaluation: EvaluationPolicy | None = None

    @model_validator(mode="after")
    def _review_fits(self) -> Policy:
        review = self.review
        if review is None:
            return self
        if self.fallback.review:
            raise ValueError("fallback.review: true and a review section: keep only 'review'")
        if review.mode == "hold" and self.fallback.message is None:
            raise ValueError("review.mode: hold answers with the fallback message: set it")
        if review.webhook is not None and review.webhook_secret_env is None:
            raise ValueError("review.webhook needs webhook_secret_env: its body is signed")
        return self
