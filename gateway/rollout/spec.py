"""The policy's ``rollout`` and ``evaluation`` sections (docs/policy-lifecycle.md).

``rollout`` belongs in a candidate file (``W.candidate.yaml``): ``percent`` of callers, picked
by a sticky hash of ``key``, are enforced under the candidate and the rest under the live
policy; ``percent: 0`` is the shadow judgement. ``abort_on`` names how far the candidate's
signals may stray from live's over a window before the canary drops to 0% on every instance.
``evaluation`` names a fixed set of cases with expected outcomes and the target a version must
meet before it is promoted.
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

__all__ = ["AbortOn", "EvaluationPolicy", "RolloutKey", "RolloutPolicy"]

Rate = Annotated[float, Field(gt=0, le=1)]
Ratio = Annotated[float, Field(gt=1)]


def _known_key(value: str) -> str:
    if value in ("subject", "key", "team") or (
        value.startswith("header:") and len(value) > len("header:")
    ):
        return value
    raise ValueError(f"'{value}' is not subject, key, team or header:NAME")


# What the sticky assignment hashes: the caller's subject, gateway key, team, or a request
# header such as a conversation id (a whole conversation stays on one version).
RolloutKey = Annotated[str, StringConstraints(max_length=128), AfterValidator(_known_key)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AbortOn(_Strict):
    """Thresholds on the candidate's signals relative to live's, over ``window_s``, judged only
    once both sides have ``min_requests`` in the window (a quiet canary never aborts on noise).

    Rates are the largest increase allowed over live's, in rate points (``0.05``: five points
    more than live); latency and cost are the largest ratio to live's (``1.5``: half again).
    A crossing must also be significant (gateway/rollout/judge.py). ``webhook`` is told of an
    abort with a body signed as review decisions are (HMAC-SHA256 under the key in the
    environment variable ``webhook_secret_env``).
    """

    window_s: Annotated[int, Field(ge=10, le=86_400)] = 300
    min_requests: Annotated[int, Field(ge=10)] = 50
    error_rate: Rate | None = None
    refusal_rate: Rate | None = None
    fallback_rate: Rate | None = None
    block_rate: Rate | None = None
    review_rate: Rate | None = None
    latency_p95: Ratio | None = None
    cost_per_request: Ratio | None = None
    webhook: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    webhook_secret_env: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _signed(self) -> AbortOn:
        if self.webhook is not None and self.webhook_secret_env is None:
            raise ValueError("abort_on.webhook needs webhook_secret_env: its body is signed")
        return self


class RolloutPolicy(_Strict):
    percent: Annotated[float, Field(ge=0, le=100)] = 0
    key: RolloutKey = "subject"
    abort_on: AbortOn | None = None


class EvaluationPolicy(_Strict):
    """``set`` is a JSONL file relative to the policies folder; ``metric`` over its cases must
    reach ``target`` for ``gateway policy promote`` to pass its evaluation gate."""

    set: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    metric: Literal["pass_rate"] = "pass_rate"
    target: Annotated[float, Field(gt=0, le=1)]
