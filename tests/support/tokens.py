"""An identity provider for tests: keys of every supported type and tokens, good and hostile."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test"
AUDIENCE = "llm-gateway"
SECRET = "s" * 24 + "-a-test-hmac-secret-of-48-bytes!"  # HS256 needs at least 32 bytes


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def jwk(key: Any, kid: str, **extra: Any) -> dict[str, Any]:
    """The public JWK of a private key, as an identity provider publishes it."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        data = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        data = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        data = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**data, "kid": kid, "use": "sig", **extra}


@dataclass
class Idp:
    """Signing keys; ``token`` mints a valid token unless told otherwise."""

    rsa: rsa.RSAPrivateKey = field(default_factory=rsa_key)
    rsa_other: rsa.RSAPrivateKey = field(default_factory=rsa_key)
    ec: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    ed: ed25519.Ed25519PrivateKey = field(default_factory=ed25519.Ed25519PrivateKey.generate)

    def claims(self, **changes: Any) -> dict[str, Any]:
        """Good claims; a change to None removes the claim."""
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "ann",
            "iat": now,
            "exp": now + 300,
            "realm_access": {"roles": ["sales"]},
            "org": {"team": "emea"},
        }
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def token(
        self,
        alg: str = "RS256",
        key: Any = None,
        kid: str | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        if key is None:
            key = {"RS256": self.rsa, "ES256": self.ec, "EdDSA": self.ed, "HS256": SECRET}[alg]
        hdrs = {**({"kid": kid} if kid else {}), **(headers or {})}
        return jwt.encode(self.claims(**claims), key, algorithm=alg, headers=hdrs or None)

    def write_keys(self, folder: Path) -> None:
        """rsa.pem (the RSA public key) and jwks.json (EC ``ec-1``, Ed25519 ``ed-1``)."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "rsa.pem").write_bytes(public_pem(self.rsa))
        jwks = {"keys": [jwk(self.ec, "ec-1"), jwk(self.ed, "ed-1")]}
        (folder / "jwks.json").write_bytes(orjson.dumps(jwks))


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}.{b64(signature)}"


def hs256_with(secret: bytes, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """HS256 with any bytes as the secret: pyjwt refuses to sign with a PEM key, attackers don't."""
    head = b64(orjson.dumps(header or {"alg": "HS256", "typ": "JWT"}))
    signing_input = f"{head}.{b64(orjson.dumps(claims))}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"
