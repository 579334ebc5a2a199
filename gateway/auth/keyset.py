"""Verification keys, each bound to the algorithms it may check, never chosen by the token.

A key's algorithms are the configured ones its type can verify (RSA: RS*/PS*; an EC curve: its
one ES*; Ed25519/Ed448: EdDSA), narrowed to the JWK's ``alg`` when it names one. A token's
``alg`` only selects among those, so an RSA public key can never be used as an HMAC secret.
Symmetric keys come only from ``secret_env``: ``oct`` keys in a JWKS are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt import PyJWK
from jwt.exceptions import PyJWTError

__all__ = ["UnusableKey", "VerifyKey", "hmac_key", "parse_jwks", "pem_key"]

log = logging.getLogger("gateway.auth")

_MIN_RSA_BITS = 2048
_EC_ALGORITHM = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
# RFC 7518 §3.2: an HMAC key at least as long as the hash output.
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


class UnusableKey(ValueError):
    """A key that cannot be used: unreadable, too weak, or fit for no allowed algorithm."""


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """A key and the only algorithms it may verify; ``kid`` is None for PEM keys and secrets."""

    kid: str | None
    key: Any  # a cryptography public key, or the HMAC secret's bytes
    algorithms: tuple[str, ...]
    source: str


def hmac_key(secret: str, allowed: Collection[str], source: str) -> VerifyKey:
    """The HS* secret, refused if shorter than the longest allowed hash output."""
    algorithms = tuple(a for a in allowed if a.startswith("HS"))
    need = max(_HMAC_MIN_BYTES[a] for a in algorithms)
    raw = secret.encode()
    if len(raw) < need:
        raise UnusableKey(
            f"{source}: the secret has {len(raw)} bytes, {'/'.join(algorithms)} need {need}"
        )
    return VerifyKey(None, raw, algorithms, source)


def pem_key(pem: bytes, allowed: Collection[str], source: str) -> VerifyKey:
    """A PEM public key (RSA of 2048 bits or more, EC, Ed25519 or Ed448)."""
    try:
        key = load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UnusableKey(f"{source}: not a PEM public key ({exc})") from None
    return VerifyKey(None, key, _algorithms_for(key, allowed, source), source)


def parse_jwks(raw: bytes, allowed: Collection[str], source: str) -> list[VerifyKey]:
    """The usable signing keys of a JWKS document; UnusableKey if it is not one.

    Unusable entries (symmetric, encryption-only, unknown types, algorithms not allowed) are
    skipped with a log line, as identity providers publish keys for other clients too.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UnusableKey(f"{source}: not JSON ({exc})") from None
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise UnusableKey(f"{source}: not a JWKS (no 'keys' array)")
    return list(_usable(entries, allowed, source))


def _usable(entries: Iterable[Any], allowed: Collection[str], source: str) -> Iterable[VerifyKey]:
    for i, jwk in enumerate(entries):
        where = f"{source} key {i}"
        if not isinstance(jwk, dict) or jwk.get("kty") == "oct" or jwk.get("use", "sig") != "sig":
            log.info("%s skipped: not an asymmetric signing key", where)
            continue
        kid = jwk.get("kid")
        try:
            key = PyJWK(jwk, "EdDSA" if jwk.get("kty") == "OKP" else None).key
            if hasattr(
                key, "public_key"
            ):  # a private JWK published by mistake: use its public half
                key = key.public_key()
            algorithms = _algorithms_for(key, allowed, where)
        except (PyJWTError, UnusableKey, ValueError, TypeError) as exc:
            log.info("%s skipped: %s", where, exc)
            continue
        named = jwk.get("alg")
        if named is not None:
            algorithms = tuple(a for a in algorithms if a == named)
            if not algorithms:
                log.info("%s skipped: its alg %r is not allowed", where, named)
                continue
        yield VerifyKey(kid if isinstance(kid, str) else None, key, algorithms, source)


def _algorithms_for(key: Any, allowed: Collection[str], source: str) -> tuple[str, ...]:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise UnusableKey(
                f"{source}: RSA key of {key.key_size} bits (at least {_MIN_RSA_BITS})"
            )
        fits = tuple(a for a in allowed if a[:2] in ("RS", "PS"))
    elif isinstance(key, ec.EllipticCurvePublicKey):
        fits = tuple(a for a in allowed if a == _EC_ALGORITHM.get(key.curve.name))
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        fits = tuple(a for a in allowed if a == "EdDSA")
    else:
        raise UnusableKey(f"{source}: unsupported key type {type(key).__name__}")
    if not fits:
        raise UnusableKey(f"{source}: no allowed algorithm fits this {type(key).__name__}")
    return fits
