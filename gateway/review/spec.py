"""The policy's ``review`` section and gateway.yaml's ``review`` settings.

``review.on`` names fallback triggers (a property of each reason, gateway/errors.py) and
``tool:NAME`` (an answer in which the model calls that tool). ``fallback.review: true`` is the
older shorthand for ``review: {on: <fallback.on>, mode: flag}`` (``effective_review``).
"""

from __future__ import annotations

import re
import typing
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from gateway.errors import Trigger

if TYPE_CHECKING:
    from gateway.policy.models import Policy

__all__ = ["ReviewConfig", "ReviewOn", "ReviewPolicy", "effective_review", "tool_trigger"]

_TRIGGERS = frozenset(typing.get_args(Trigger))
_TOOL = re.compile(r"^tool:[A-Za-z0-9_.-]{1,64}$")


def _known_on(value: str) -> str:
    if value not in _TRIGGERS and not _TOOL.match(value):
        known = ", ".join(sorted(_TRIGGERS))
        raise ValueError(f"'{value}' is neither a trigger ({known}) nor 'tool:NAME'")
    return value


ReviewOn = Annotated[str, AfterValidator(_known_on)]


def tool_trigger(name: str) -> str:
    return f"tool:{name}"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReviewPolicy(_Strict):
    """What goes to a human. ``flag``: the answer goes out as it would have, and an item waits
    in the queue; ``hold``: the client gets the fallback message at once with status 202 and
    ``x-gateway-review-id``, and the outcome when a reviewer decides (poll or webhook).

    ``assign_to``: roles or subjects that may claim this workflow's items (empty: every
    reviewer). ``reveal``: roles or subjects that may read this workflow's tokenized values
    (empty: nobody; a grant is never implied, not even for the console's admin). ``webhook``
    is called with a body signed by HMAC-SHA256 under the key in the environment variable
    ``webhook_secret_env`` on every decision.
    """

    on: Annotated[list[ReviewOn], Field(min_length=1)]
    mode: Literal["flag", "hold"] = "flag"
    assign_to: list[Annotated[str, Field(min_length=1)]] = []
    reveal: list[Annotated[str, Field(min_length=1)]] = []
    sla_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 60
    webhook: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    webhook_secret_env: Annotated[str, Field(min_length=1)] | None = None

    def grants_reveal(self, subject: str, roles: frozenset[str]) -> bool:
        """Whether this caller may read the workflow's tokenized values."""
        return subject in self.reveal or not roles.isdisjoint(self.reveal)

    @property
    def tools(self) -> frozenset[str]:
        """The tool names whose calls are held."""
        return frozenset(o[5:] for o in self.on if o.startswith("tool:"))


def effective_review(policy: Policy) -> ReviewPolicy | None:
    """The policy's review section, or the one ``fallback.review: true`` stands for."""
    if policy.review is not None:
        return policy.review
    if policy.fallback.review:
        return ReviewPolicy(on=list(policy.fallback.on), mode="flag")
    return None


class ReviewConfig(_Strict):
    """gateway.yaml ``review``: where review state lives and how decisions are delivered.

    The store is PostgreSQL (schema ``pg_schema``) when ``stores.audit_url`` is set, else the
    SQLite file ``sqlite_path``.
    """

    sqlite_path: str = "reviews.db"
    pg_schema: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "review"
    claim_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 15.0
    webhook_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    webhook_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    webhook_backoff_s: Annotated[float, Field(ge=0, le=600)] = 1.0
