"""JWT authentication with pyjwt: the identity provider's tokens become Principals.

Order of checks, cheapest and least trusting first: shape and ``alg`` (from the unverified
header, only to choose among configured keys), the verified-token cache, the signature with the
keys bound to that ``alg``, then ``exp`` (required), ``nbf``, ``iat``, ``iss`` and ``aud``.
Every failure is a 401 whose code names the check; the token itself is never logged or echoed.
"""

from __future__ import annotations

import binascii
import hashlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import orjson
from jwt.types import Options
from jwt.utils import base64url_decode

from gateway import errors
from gateway.auth.cache import VerifiedTokens
from gateway.auth.claims import ClaimMapper
from gateway.auth.jwks import RemoteKeys
from gateway.auth.keyset import UnusableKey, VerifyKey, hmac_key, parse_jwks, pem_key
from gateway.auth.principal import Principal
from gateway.auth.refusal import unauthorized
from gateway.config import JwtConfig
from gateway.errors import GatewayError, Reason

__all__ = ["JwtVerifier", "load_static_keys"]

_OPTIONS: Options = {
    "require": ["exp"],
    "verify_signature": True,
    "verify_exp": True,
    "verify_nbf": True,
    "verify_iat": True,
    "verify_iss": True,
    "verify_aud": True,
    "enforce_minimum_key_length": True,
}

# pyjwt's exceptions, mapped once here; subclasses before their bases.
_CODES: tuple[tuple[type[jwt.PyJWTError], Reason], ...] = (
    (jwt.InvalidSignatureError, errors.AUTH_BAD_SIGNATURE),
    (jwt.ExpiredSignatureError, errors.AUTH_EXPIRED),
    (jwt.ImmatureSignatureError, errors.AUTH_NOT_YET_VALID),
    (jwt.InvalidAudienceError, errors.AUTH_BAD_AUDIENCE),
    (jwt.InvalidIssuerError, errors.AUTH_BAD_ISSUER),
    (jwt.MissingRequiredClaimError, errors.AUTH_MISSING_CLAIM),
    (jwt.InvalidAlgorithmError, errors.AUTH_ALG_NOT_ALLOWED),
    (jwt.InvalidKeyError, errors.AUTH_BAD_SIGNATURE),
    (jwt.InvalidIssuedAtError, errors.AUTH_INVALID_CLAIMS),
    (jwt.DecodeError, errors.AUTH_MALFORMED),
)


def load_static_keys(config: JwtConfig, base: Path, env: Mapping[str, str]) -> list[VerifyKey]:
    """The HMAC secret, PEM files and JWKS file of ``config``; UnusableKey names a bad one."""
    allowed = config.algorithms
    keys: list[VerifyKey] = []
    if config.secret_env:
        secret = env.get(config.secret_env)
        if not secret:
            raise UnusableKey(
                f"auth.jwt.secret_env: environment variable {config.secret_env} is not set"
            )
        keys.append(hmac_key(secret, allowed, f"${config.secret_env}"))
    for name in config.public_key_files:
        keys.append(pem_key(_read(base / name), allowed, name))
    if config.jwks_file:
        found = parse_jwks(_read(base / config.jwks_file), allowed, config.jwks_file)
        if not found:
            raise UnusableKey(f"{config.jwks_file}: no usable signing key")
        keys.extend(found)
    return keys


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UnusableKey(f"{path}: cannot read ({exc.strerror})") from None


class JwtVerifier:
    """Verifies bearer JWTs against ``auth.jwt``; ``start``/``aclose`` run the JWKS refresher."""

    def __init__(
        self,
        config: JwtConfig,
        static_keys: list[VerifyKey],
        cache: VerifiedTokens | None = None,
    ) -> None:
        self._config = config
        self._allowed = frozenset(config.algorithms)
        self._static = tuple(static_keys)
        self._audience = config.audience
        self._claims = ClaimMapper(config.subject_claim, config.roles_claim, config.team_claim)
        self._cache = cache if cache is not None else VerifiedTokens()
        self._remote = (
            RemoteKeys(config.jwks_url, config.algorithms, self._cache.clear)
            if config.jwks_url
            else None
        )

    async def start(self) -> None:
        if self._remote is not None:
            await self._remote.start()

    async def aclose(self) -> None:
        if self._remote is not None:
            await self._remote.aclose()

    async def verify(self, token: str) -> Principal:
        now = time.time()
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(digest, now)
        if cached is not None:
            return cached
        alg, kid = self._header(token)
        keys = await self._keys_for(alg, kid)
        principal = self._principal(self._decode(token, keys))
        self._cache.put(digest, principal, now)
        return principal

    def _header(self, token: str) -> tuple[str, str | None]:
        if token.count(".") != 2:
            raise unauthorized(errors.AUTH_MALFORMED, "not three segments")
        try:
            header = orjson.loads(base64url_decode(token.partition(".")[0]))
        except (binascii.Error, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise unauthorized(errors.AUTH_MALFORMED, f"header: {exc}") from None
        if not isinstance(header, dict):
            raise unauthorized(errors.AUTH_MALFORMED, "header is not an object")
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self._allowed:
            raise unauthorized(errors.AUTH_ALG_NOT_ALLOWED, f"alg {str(alg)[:16]!r}")
        if kid is not None and not isinstance(kid, str):
            raise unauthorized(errors.AUTH_MALFORMED, "kid is not a string")
        return alg, kid

    async def _keys_for(self, alg: str, kid: str | None) -> list[VerifyKey]:
        """Keys that may check ``alg``; with a ``kid``, JWKS keys must carry that kid.

        HMAC and PEM keys have no kid and are tried whatever the token names; a token without
        a kid is tried against every key fit for its ``alg`` (a handful, set by the operator).
        """
        keys = _matching(self._static, alg, kid)
        remote = self._remote
        if remote is None or alg.startswith("HS"):
            if not keys:
                raise unauthorized(errors.AUTH_UNKNOWN_KID, f"no key for kid {str(kid)[:64]!r}")
            return keys
        remote.keep_fresh()
        found = _matching(remote.keys, alg, kid)
        if not found and kid is not None:  # even with PEM keys: the kid may be a rotated one
            await remote.refresh_for_unknown_kid()
            found = _matching(remote.keys, alg, kid)
        if not found and not keys:
            reason = errors.AUTH_JWKS_UNAVAILABLE if remote.failing else errors.AUTH_UNKNOWN_KID
            raise unauthorized(reason, f"no key for kid {str(kid)[:64]!r}")
        return keys + found

    def _decode(self, token: str, keys: list[VerifyKey]) -> dict[str, Any]:
        failure: GatewayError | None = None
        for key in keys:
            try:
                return jwt.decode(
                    token,
                    key.key,
                    algorithms=list(key.algorithms),
                    options=_OPTIONS,
                    audience=self._audience,
                    issuer=self._config.issuer,
                    leeway=self._config.leeway_s,
                )
            except jwt.PyJWTError as exc:
                failure = _mapped(exc)
                if failure.reason is not errors.AUTH_BAD_SIGNATURE:
                    raise failure from None  # the signature held: a claim failed
        assert failure is not None
        raise failure

    def _principal(self, claims: dict[str, Any]) -> Principal:
        exp = claims["exp"]  # pyjwt required it and checked int(exp), which a string passes
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise unauthorized(errors.AUTH_INVALID_CLAIMS, "exp is not a number")
        return self._claims.principal(claims, float(exp))


def _matching(keys: tuple[VerifyKey, ...], alg: str, kid: str | None) -> list[VerifyKey]:
    return [
        k for k in keys if alg in k.algorithms and (kid is None or k.kid is None or k.kid == kid)
    ]


def _mapped(exc: jwt.PyJWTError) -> GatewayError:
    for kind, reason in _CODES:
        if isinstance(exc, kind):
            return unauthorized(reason, str(exc))
    return unauthorized(errors.AUTH_MALFORMED, str(exc))
