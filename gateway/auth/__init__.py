"""Authentication: every method yields a Principal."""

from gateway.auth.credentials import Authenticator
from gateway.auth.keys import KeyStore, create_key
from gateway.auth.principal import Principal

__all__ = ["Authenticator", "KeyStore", "Principal", "create_key"]
