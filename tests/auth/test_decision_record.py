"""The decision (principal and reason) stays on the request context for the audit trail.

Runs the real pipeline in process with real keys, policies, JWT verification and the mock
provider: HTTP, which the other tests cover, is the only part left out."""

from __future__ import annotations

from pathlib import Path

import orjson

from gateway.auth import Authenticator, JwtVerifier, KeyStore, create_key, load_static_keys
from gateway.boundary.actions import TokenMinter
from gateway.boundary.step import Boundary
from gateway.boundary.vault import MemoryVault
from gateway.config import JwtConfig, ModelConfig
from gateway.context import Decision, RequestContext
from gateway.pipeline import Call, Pipeline
from gateway.policy import PolicyRegistry
from gateway.policy.compile import compile_policy
from gateway.policy.models import Policy
from gateway.surfaces import OPENAI
from gateway.upstream import Forwarder
from gateway.upstream.mock import MockProvider
from tests.auth.conftest import jwt_settings
from tests.support.tokens import Idp

BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]})


def _pipeline(tmp_path: Path, idp: Idp) -> tuple[Pipeline, str]:
    idp.write_keys(tmp_path / "idp")
    config = JwtConfig.model_validate(
        jwt_settings(algorithms=["RS256"], secret_env=None, jwks_file=None)
    )
    verifier = JwtVerifier(config, load_static_keys(config, tmp_path, {}))
    key, _ = create_key(tmp_path / "keys.yaml", "kim", ["ops"])
    policy = Policy.model_validate(
        {"workflow": "w", "owner": "o", "access": {"roles": ["sales"], "models": ["m"]}}
    )
    registry = PolicyRegistry({"w": compile_policy(policy, "w.yaml")})
    models = {"m": ModelConfig(provider="demo", upstream_model="m")}
    auth = Authenticator(KeyStore(tmp_path / "keys.yaml"), verifier)
    boundary = Boundary(MemoryVault(), TokenMinter(b"k" * 32))
    return Pipeline(
        auth, registry, Forwarder({"demo": MockProvider("demo")}, models), boundary
    ), key


async def _run(pipeline: Pipeline, credential: str) -> RequestContext:
    ctx = RequestContext("chat", "w")

    async def body() -> bytes:
        return BODY

    call = Call(OPENAI, "w", {"authorization": f"Bearer {credential}"}, body)
    await pipeline.complete(ctx, call)
    return ctx


async def test_a_refused_token_leaves_its_exact_code_and_no_principal(
    tmp_path: Path, idp: Idp
) -> None:
    pipeline, _ = _pipeline(tmp_path, idp)
    ctx = await _run(pipeline, idp.token(aud="elsewhere"))
    assert ctx.principal is None
    assert ctx.decisions == [Decision("authenticate", "deny", "auth.bad_audience")]


async def test_a_refused_principal_is_kept_with_the_reason(tmp_path: Path, idp: Idp) -> None:
    pipeline, key = _pipeline(tmp_path, idp)
    ctx = await _run(pipeline, key)
    assert ctx.principal is not None
    assert (ctx.principal.subject, ctx.principal.method) == ("kim", "key")
    assert ctx.decisions == [Decision("access", "deny", "access.role_denied")]

    ctx = await _run(pipeline, idp.token(sub="ann"))
    assert ctx.principal is not None
    assert (ctx.principal.subject, ctx.principal.method, ctx.principal.team) == (
        "ann",
        "jwt",
        "emea",
    )
    assert ctx.principal.expires_at is not None
    assert ctx.decisions == []  # admitted: nothing refused, nothing rewritten
    assert ctx.model_used == "m"
