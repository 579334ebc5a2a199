"""gateway.yaml ``console``: where the console is served, its sessions, and its roles."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = ["ConsoleConfig", "ConsoleRoles"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConsoleRoles(_Strict):
    """The credential roles (gateway keys' roles, a JWT's roles claim) that open the console:
    ``admin`` everything, ``reviewer`` the queue and the explorer, ``auditor`` the explorer,
    records and policies, read-only. Reviewers also use ``/admin/reviews``. Who may reveal a
    review item's tokenized values is each workflow's policy's ``review.reveal``, not a role
    here."""

    admin: Annotated[str, Field(min_length=1)] = "admin"
    reviewer: Annotated[str, Field(min_length=1)] = "reviewer"
    auditor: Annotated[str, Field(min_length=1)] = "auditor"

    @model_validator(mode="before")
    @classmethod
    def _no_reveal(cls, data: object) -> object:
        # The gateway-wide reveal role is gone: say where the grant went, not "extra field".
        if isinstance(data, dict) and "reveal" in data:
            raise ValueError(
                "console.roles.reveal was removed: grant reveal per workflow in its policy "
                "(review.reveal: [roles or subjects]; docs/console-and-review.md)"
            )
        return data


class ConsoleConfig(_Strict):
    """``prefix``: the path the gateway serves the console under (a reverse proxy may add its
    own in front: every link and asset is relative). ``session_minutes``: how long a sign-in
    lasts; the cookie is ``Secure`` when the request came over TLS (or ``x-forwarded-proto:
    https`` says it did)."""

    enabled: bool = True
    prefix: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")] = (
        "/console"
    )
    session_minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] = 480.0
    roles: ConsoleRoles = ConsoleRoles()
