"""A gateway that accepts JWTs (PEM, JWKS file and HMAC keys) and gateway keys, with
workflows that exercise every access rule, and a factory for gateways with other auth
settings (a JWKS URL, an RS256-only allow-list)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.auth.keys import create_key
from tests.conftest import UPSTREAM_KEYS, Gateway, gateway_config
from tests.fakes.upstream import FakeUpstream
from tests.support.server import GatewayServer, new_key, write_yaml
from tests.support.tokens import AUDIENCE, ISSUER, SECRET, Idp

ADMIN_ROLE = "gw-admin"
ENV = {**UPSTREAM_KEYS, "JWT_SECRET": SECRET}


def _policy(name: str, **access: Any) -> dict[str, Any]:
    return {
        "workflow": name,
        "owner": f"{name}@example.com",
        "access": {"roles": ["sales"], "models": ["gpt-test", "claude-test"], **access},
        "upstream": {"timeout_s": 5, "retries": 0},
    }


POLICIES = [
    _policy("open"),
    _policy("clamped", max_output_tokens=100, on_exceed="clamp"),
    _policy("strict", max_output_tokens=100, allow_tools=False, allow_streaming=False),
    _policy("no_messages", endpoints=["chat", "models"]),
    _policy("emea_only", teams=["emea"]),
    _policy("ann_only", subjects=["ann"]),
    _policy("chat_only", endpoints=["chat"]),
]


def jwt_settings(**changes: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "algorithms": ["RS256", "ES256", "EdDSA", "HS256"],
        "secret_env": "JWT_SECRET",
        "public_key_files": ["idp/rsa.pem"],
        "jwks_file": "idp/jwks.json",
        "leeway_s": 1,
        "roles_claim": "realm_access.roles",
        "team_claim": "org.team",
    }
    settings.update(changes)
    return {k: v for k, v in settings.items() if v is not None}


@dataclass
class AuthGateway(Gateway):
    sales_key: str = ""  # roles: sales, team emea
    admin_key: str = ""  # roles: gw-admin


Start = Callable[..., AuthGateway]


@pytest.fixture(scope="session")
def idp() -> Idp:
    return Idp()


@pytest.fixture(scope="session")
def start_gateway(
    upstream: FakeUpstream, idp: Idp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Start]:
    """Start a gateway with ``jwt_settings(**changes)``; stopped at the end of the session
    (or by the test, for the ones that need a fresh one)."""
    servers: list[GatewayServer] = []

    def start(**changes: Any) -> AuthGateway:
        root = tmp_path_factory.mktemp("authgw")
        idp.write_keys(root / "idp")
        config = gateway_config(upstream)
        config["auth"] = {
            "api_keys_file": "keys.yaml",
            "admin_role": ADMIN_ROLE,
            "jwt": jwt_settings(**changes),
        }
        # A hostile token of 1 MB must reach the JWT verifier, whose own bound (16 KB) is
        # under test here: the head bound (431, tests/hardening) is raised above it.
        config["server"] = {"max_header_bytes": 2 * 1024 * 1024}
        path = write_yaml(root / "gateway.yaml", config)
        for policy in POLICIES:
            write_yaml(root / "policies" / f"{policy['workflow']}.yaml", policy)
        keys = root / "keys.yaml"
        sales = create_key(keys, "sam", ["sales"], team="emea")[0]
        admin = new_key(keys, "root", [ADMIN_ROLE])
        server = GatewayServer(path, ENV).start()
        servers.append(server)
        return AuthGateway(server.url, sales, "", root, sales_key=sales, admin_key=admin)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def jwt_gateway(start_gateway: Start) -> AuthGateway:
    return start_gateway()


def keys_folder(gw: AuthGateway) -> Path:
    return gw.config_dir / "idp"
