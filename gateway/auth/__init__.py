"""Authentication: gateway keys and JWTs each yield a Principal."""

from gateway.auth.credentials import Authenticator
from gateway.auth.jwt import JwtVerifier, load_static_keys
from gateway.auth.keys import KeyStore, create_key, revoke_key
from gateway.auth.principal import Principal

__all__ = [
    "Authenticator",
    "JwtVerifier",
    "KeyStore",
    "Principal",
    "create_key",
    "load_static_keys",
    "revoke_key",
]
