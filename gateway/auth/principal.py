"""Who is calling: what every authentication method yields."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``key_id`` names the gateway key, never the key itself."""

    subject: str
    roles: frozenset[str]
    team: str | None = None
    key_id: str | None = None
