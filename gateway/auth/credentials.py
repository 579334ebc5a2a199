"""Find the caller's credential where the official SDKs put it, and resolve it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gateway import errors
from gateway.auth.keys import KEY_PREFIX, KeyStore
from gateway.auth.principal import Principal
from gateway.auth.refusal import unauthorized

if TYPE_CHECKING:  # pyjwt and cryptography load only when auth.jwt is configured
    from gateway.auth.jwt import JwtVerifier

__all__ = ["MAX_CREDENTIAL", "Authenticator", "credential"]

# Gateway keys are 56 characters; identity providers' JWTs with many roles reach a few KB.
# Anything longer is refused before it is hashed or decoded.
MAX_CREDENTIAL = 16 * 1024


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
    """Turns request headers into a Principal or refuses with an ``auth.*`` reason (401).

    A credential starting with ``gwk_`` is a gateway key; anything else is a JWT when
    ``auth.jwt`` is configured, and an unknown key otherwise.
    """

    def __init__(self, keys: KeyStore, jwt: JwtVerifier | None = None) -> None:
        self._keys = keys
        self._jwt = jwt

    async def start(self) -> None:
        if self._jwt is not None:
            await self._jwt.start()

    async def aclose(self) -> None:
        if self._jwt is not None:
            await self._jwt.aclose()

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        token = credential(headers)
        if token is None:
            raise unauthorized(errors.AUTH_MISSING_KEY)
        if token.startswith(KEY_PREFIX) or self._jwt is None:
            if len(token) > MAX_CREDENTIAL:
                raise unauthorized(errors.AUTH_INVALID_KEY, f"{len(token)} characters")
            return self._keys.resolve(token)
        if len(token) > MAX_CREDENTIAL:
            raise unauthorized(errors.AUTH_MALFORMED, f"{len(token)} characters")
        if not token.isascii():
            raise unauthorized(errors.AUTH_MALFORMED, "not ASCII")
        return await self._jwt.verify(token)
