"""Find the caller's credential where the official SDKs put it, and resolve it."""

from __future__ import annotations

from collections.abc import Mapping

from gateway import errors
from gateway.auth.keys import KeyStore
from gateway.auth.principal import Principal
from gateway.errors import GatewayError

__all__ = ["Authenticator", "credential"]

# Anything longer is not one of our keys; refuse before hashing attacker-sized input.
_MAX_CREDENTIAL = 8192


def credential(headers: Mapping[str, str]) -> str | None:
    """The bearer token (openai SDK) or ``x-api-key`` (anthropic SDK), whichever is present."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class Authenticator:
    """Turns request headers into a Principal or refuses with an ``auth.*`` reason."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        token = credential(headers)
        if token is None:
            raise GatewayError(errors.AUTH_MISSING_KEY)
        principal = self._keys.principal(token) if len(token) <= _MAX_CREDENTIAL else None
        if principal is None:
            raise GatewayError(errors.AUTH_INVALID_KEY)
        return principal
