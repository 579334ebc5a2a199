"""Authentication: gateway keys and JWTs each yield a Principal."""

from typing import TYPE_CHECKING, Any

from gateway.auth.credentials import Authenticator
from gateway.auth.keys import KeyStore, create_key, revoke_key
from gateway.auth.principal import Principal

if TYPE_CHECKING:
    from gateway.auth.jwt import JwtVerifier, load_static_keys

__all__ = [
    "Authenticator",
    "JwtVerifier",
    "KeyStore",
    "Principal",
    "create_key",
    "load_static_keys",
    "revoke_key",
]


def __getattr__(name: str) -> Any:
    """The JWT verifier on first use: pyjwt and cryptography cost about a tenth of a second of
    start-up, which a deployment without ``auth.jwt`` never needs."""
    if name in ("JwtVerifier", "load_static_keys"):
        from gateway.auth import jwt

        return getattr(jwt, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
