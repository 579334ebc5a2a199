"""What authentication costs per request: gateway keys and JWTs (HS256, RS256, ES256, EdDSA),
cold (first sight of a token: signature and claims checked) and cached (the same token again),
next to a request with no auth check at all, all measured in the same run.

    python bench/auth.py            # about 30 s
    python bench/auth.py --quick    # a few seconds

Two tables, both in process on uvloop (no sockets, so the figures are the auth work itself):

* *steps*: each part alone, in µs per call: finding the credential (the no-auth baseline),
  the key lookup, JWT verification cold and cached, role resolution (claims to a Principal)
  and the access check;
* *requests*: one non-streaming chat request through the whole pipeline (parse, access,
  the in-process mock provider) with each method, next to the same request with no auth check.

Cold figures use a fresh token per call (minted before timing), so nothing is cached. Each
figure is the best of several rounds, to keep other work on the machine out of it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import jwt
import orjson
import uvloop
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from gateway.access import check_caller
from gateway.auth import Authenticator, JwtVerifier, KeyStore, Principal, create_key
from gateway.auth.claims import ClaimMapper
from gateway.auth.credentials import credential
from gateway.auth.keyset import VerifyKey, hmac_key, pem_key
from gateway.boundary.actions import TokenMinter
from gateway.boundary.step import Boundary
from gateway.boundary.vault import MemoryVault
from gateway.config import JwtConfig, ModelConfig
from gateway.context import RequestContext
from gateway.pipeline import Call, Pipeline
from gateway.policy import PolicyRegistry
from gateway.policy.compile import compile_policy
from gateway.policy.models import Policy
from gateway.surfaces import OPENAI
from gateway.upstream import Forwarder
from gateway.upstream.mock import MockProvider

ISSUER, AUDIENCE, SECRET = "https://idp.bench", "llm-gateway", "b" * 48
BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 1000}]})


class NoAuth(Authenticator):
    """The baseline: every request is the same principal, with no credential looked at."""

    def __init__(self, principal: Principal) -> None:
        self._principal = principal

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        return self._principal


def _claims(i: int) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"user{i}",
        "iat": now,
        "exp": now + 3600,
        "jti": str(i),
        "realm_access": {"roles": ["sales", "ops"]},
        "org": {"team": "emea"},
    }


class Setup:
    def __init__(self, folder: Path, n: int) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ed = ed25519.Ed25519PrivateKey.generate()
        algs = ["RS256", "ES256", "EdDSA", "HS256"]
        self.config = JwtConfig(
            issuer=ISSUER, audience=AUDIENCE, algorithms=algs, secret_env="S",
            public_key_files=["k.pem"], roles_claim="realm_access.roles", team_claim="org.team",
        )  # fmt: skip
        keys: list[VerifyKey] = [hmac_key(SECRET, algs, "secret")]
        for name, key in (("rsa", self.rsa), ("ec", self.ec), ("ed", self.ed)):
            pem = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            keys.append(pem_key(pem, algs, name))
        self.keys = keys
        self.signers = {"HS256": SECRET, "RS256": self.rsa, "ES256": self.ec, "EdDSA": self.ed}
        # Fresh tokens for the cold figures, minted before any timing.
        self.tokens = {alg: [self.token(alg, i) for i in range(n)] for alg in self.signers}
        self.key, _ = create_key(folder / "keys.yaml", "kim", ["sales"], "emea")
        self.keystore = KeyStore(folder / "keys.yaml")
        policy = Policy.model_validate(
            {"workflow": "w", "owner": "o",
             "access": {"roles": ["sales"], "models": ["m"], "max_output_tokens": 512}}
        )  # fmt: skip
        self.policy = compile_policy(policy, "w.yaml")

    def token(self, alg: str, i: int) -> str:
        return jwt.encode(_claims(i), self.signers[alg], algorithm=alg)

    def verifier(self) -> JwtVerifier:
        return JwtVerifier(self.config, self.keys)

    def authenticator(self) -> Authenticator:
        return Authenticator(self.keystore, self.verifier())

    def pipeline(self, auth: Authenticator) -> Pipeline:
        registry = PolicyRegistry({"w": self.policy})
        models = {"m": ModelConfig(provider="demo", upstream_model="m")}
        boundary = Boundary(MemoryVault(), TokenMinter(b"k" * 32))  # no data section: unused
        return Pipeline(auth, registry, Forwarder({"demo": MockProvider("demo")}, models), boundary)


async def _per_call(fn: Callable[[int], Awaitable[object]], n: int, rounds: int) -> float:
    """Best-of-``rounds`` µs per call of ``fn(i)`` for i in 0..n-1."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for i in range(n):
            await fn(i)
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


async def steps(s: Setup, n: int, rounds: int) -> list[tuple[str, float]]:
    headers = {"authorization": f"Bearer {s.key}"}
    rows: list[tuple[str, float]] = []

    async def find(i: int) -> object:
        return credential(headers)

    rows.append(("no auth check (credential found, not checked)", await _per_call(find, n, rounds)))

    async def key(i: int) -> object:
        return s.keystore.resolve(s.key)

    rows.append(("gateway key: SHA-256 + lookup", await _per_call(key, n, rounds)))
    for alg in ("HS256", "RS256", "ES256", "EdDSA"):
        tokens = s.tokens[alg]
        cold_rounds = []
        for _ in range(rounds):  # a new verifier per round: an empty cache, every call cold
            v = s.verifier()
            cold_rounds.append(await _per_call(lambda i, v=v, t=tokens: v.verify(t[i]), n, 1))
        rows.append((f"JWT {alg}, cold (verify + claims)", min(cold_rounds)))
        warm = s.verifier()
        await warm.verify(tokens[0])
        rows.append(
            (
                f"JWT {alg}, cached",
                await _per_call(lambda i, w=warm, t=tokens[0]: w.verify(t), n, rounds),
            )
        )
    mapper = ClaimMapper("sub", "realm_access.roles", "org.team")
    claims = _claims(0)
    rules = s.policy.access

    async def roles(i: int) -> object:
        principal = mapper.principal(claims, 0.0)
        check_caller(rules, principal, "chat")
        return principal

    rows.append(
        ("role resolution: claims -> Principal + access check", await _per_call(roles, n, rounds))
    )
    sha = s.tokens["RS256"][0].encode()

    async def digest(i: int) -> object:
        return hashlib.sha256(sha).digest()

    rows.append(
        (
            "SHA-256 of a JWT (the cache key; part of every cached row)",
            await _per_call(digest, n, rounds),
        )
    )
    return rows


async def requests(s: Setup, n: int, rounds: int) -> list[tuple[str, float]]:
    async def body() -> bytes:
        return BODY

    def runner(
        pipeline: Pipeline, header: Callable[[int], str]
    ) -> Callable[[int], Awaitable[object]]:
        async def one(i: int) -> object:
            ctx = RequestContext("chat", "w")
            reply = await pipeline.complete(
                ctx, Call(OPENAI, "w", {"authorization": header(i)}, body)
            )
            assert reply.status == 200, reply.body
            return reply

        return one

    principal = Principal("kim", frozenset({"sales"}), "emea")
    rows = [
        (
            "no auth check",
            await _per_call(runner(s.pipeline(NoAuth(principal)), lambda i: ""), n, rounds),
        )
    ]
    key = f"Bearer {s.key}"
    rows.append(
        (
            "gateway key",
            await _per_call(runner(s.pipeline(s.authenticator()), lambda i: key), n, rounds),
        )
    )
    for alg in ("HS256", "RS256"):
        first = f"Bearer {s.tokens[alg][0]}"
        cached = runner(s.pipeline(s.authenticator()), lambda i, t=first: t)
        rows.append((f"JWT {alg}, cached", await _per_call(cached, n, rounds)))
        cold_rounds = []
        for _ in range(rounds):
            fresh = runner(
                s.pipeline(s.authenticator()), lambda i, a=alg: f"Bearer {s.tokens[a][i]}"
            )
            cold_rounds.append(await _per_call(fresh, n, 1))
        rows.append((f"JWT {alg}, cold", min(cold_rounds)))
    return rows


def report(step_rows: list[tuple[str, float]], request_rows: list[tuple[str, float]]) -> str:
    base_step, base_req = step_rows[0][1], request_rows[0][1]
    lines = ["| step (in process) | µs per call | over no auth |", "|---|---:|---:|"]
    lines += [f"| {name} | {us:.2f} | {us - base_step:+.2f} |" for name, us in step_rows]
    lines += [
        "",
        "| one chat request through the pipeline (mock provider, 1 KB prompt) "
        "| µs per request | added by auth |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {us:.1f} | {us - base_req:+.1f} |" for name, us in request_rows]
    return "\n".join(lines)


async def run(n: int, rounds: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"minting {4 * n} tokens...", file=sys.stderr)
        s = Setup(Path(tmp), n)
        step_rows = await steps(s, n, rounds)
        request_rows = await requests(s, n, rounds)
    return report(step_rows, request_rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    opts = parser.parse_args(argv)
    n, rounds = (300, 3) if opts.quick else (2000, 5)
    table = uvloop.run(run(n, rounds))
    cpus = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nPython {platform.python_version()}, {cpus} CPUs, load average {load}; "
          f"{n} calls per figure, best of {rounds} rounds\n")  # fmt: skip
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
