"""Who is calling: what every authentication method yields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["AuthMethod", "Principal"]

AuthMethod = Literal["key", "jwt"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``key_id`` names the gateway key, never the key itself;
    ``expires_at`` (epoch seconds) is when the credential stops being accepted."""

    subject: str
    roles: frozenset[str]
    team: str | None = None
    key_id: str | None = None
    method: AuthMethod = "key"
    expires_at: float | None = None
