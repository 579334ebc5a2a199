"""Role resolution: a verified token's claims become a Principal, as ``auth.jwt`` maps them."""

from __future__ import annotations

from typing import Any

from gateway import errors
from gateway.auth.principal import Principal
from gateway.auth.refusal import unauthorized

__all__ = ["ClaimMapper"]

_MISSING = object()


class ClaimMapper:
    """Reads subject, roles and team at their configured claim paths.

    A path is a claim name or a dotted path into nested objects (``realm_access.roles``);
    a claim whose own name contains dots (Auth0's ``https://example.com/roles``) is found
    first by its whole name. Roles may be one string or a list of strings; a claim of any
    other shape is refused rather than guessed at.

    >>> m = ClaimMapper("sub", "realm_access.roles", "org.team")
    >>> p = m.principal({"sub": "ann", "realm_access": {"roles": ["ops"]}, "org": {"team": "t"}}, 1)
    >>> (p.subject, sorted(p.roles), p.team)
    ('ann', ['ops'], 't')
    """

    def __init__(self, subject_claim: str, roles_claim: str, team_claim: str | None) -> None:
        self._subject = (subject_claim, tuple(subject_claim.split(".")))
        self._roles = (roles_claim, tuple(roles_claim.split(".")))
        self._team = (team_claim, tuple(team_claim.split("."))) if team_claim else None

    def principal(self, claims: dict[str, Any], expires_at: float) -> Principal:
        subject = _at(claims, self._subject)
        if not isinstance(subject, str) or not subject:
            raise _invalid(f"subject claim '{self._subject[0]}' is missing or not a string")
        return Principal(
            subject, self._roles_of(claims), self._team_of(claims), None, "jwt", expires_at
        )

    def _roles_of(self, claims: dict[str, Any]) -> frozenset[str]:
        roles = _at(claims, self._roles)
        if roles is _MISSING or roles is None:
            return frozenset()
        if isinstance(roles, str):
            return frozenset((roles,))
        if isinstance(roles, list) and all(isinstance(r, str) for r in roles):
            return frozenset(roles)
        raise _invalid(f"roles claim '{self._roles[0]}' is not a string or a list of strings")

    def _team_of(self, claims: dict[str, Any]) -> str | None:
        if self._team is None:
            return None
        team = _at(claims, self._team)
        if team is _MISSING or team is None:
            return None
        if not isinstance(team, str):
            raise _invalid(f"team claim '{self._team[0]}' is not a string")
        return team


def _at(claims: dict[str, Any], path: tuple[str, tuple[str, ...]]) -> Any:
    whole, parts = path
    if whole in claims:
        return claims[whole]
    node: Any = claims
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _invalid(detail: str) -> Exception:
    return unauthorized(errors.AUTH_INVALID_CLAIMS, detail)
