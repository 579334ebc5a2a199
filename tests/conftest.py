"""Shared fixtures: a fake upstream speaking the providers' wire formats, and the gateway
running as a real server in front of it, with keys and policies written for the tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from hypothesis import settings

from tests.fakes.upstream import FakeUpstream
from tests.support.clients import anthropic_client, openai_client
from tests.support.placeholders import VAULT_KEY
from tests.support.scheduling import files_and_groups
from tests.support.server import GatewayServer, new_key, write_yaml

# Properties here assert what is found, never how fast: a busy CI core must not fail them.
settings.register_profile("gateway", deadline=None)
settings.load_profile("gateway")

# With a known vault key too, so tests can compute the keyed placeholders a gateway writes.
UPSTREAM_KEYS = {
    "OPENAI_API_KEY": "sk-upstream-openai",
    "ANTHROPIC_API_KEY": "sk-ant-upstream",
    "GATEWAY_VAULT_KEY": VAULT_KEY,
}


@dataclass
class Gateway:
    url: str
    analyst_key: str  # roles: analyst
    ops_key: str  # roles: ops
    config_dir: Path

    def openai_url(self, workflow: str = "chat_app") -> str:
        return f"{self.url}/w/{workflow}/v1"

    def anthropic_url(self, workflow: str = "chat_app") -> str:
        return f"{self.url}/w/{workflow}"

    def openai(self, workflow: str = "chat_app", key: str | None = None) -> openai.OpenAI:
        """The official SDK pointed at a workflow; SDK retries off so each call is one request."""
        return openai_client(
            base_url=self.openai_url(workflow),
            api_key=key if key is not None else self.analyst_key,
            max_retries=0,
        )

    def anthropic(self, workflow: str = "chat_app", key: str | None = None) -> anthropic.Anthropic:
        return anthropic_client(
            base_url=self.anthropic_url(workflow),
            api_key=key if key is not None else self.analyst_key,
            max_retries=0,
        )


def gateway_config(fake: FakeUpstream) -> dict[str, object]:
    return {
        "listen": {"host": "127.0.0.1", "port": 0},
        "policies_dir": "policies",
        "max_body_bytes": 64 * 1024,
        "providers": {
            "openai": {
                "type": "openai",
                "base_url": f"{fake.base_url}/v1",
                "api_key_env": "OPENAI_API_KEY",
            },
            "anthropic": {
                "type": "anthropic",
                "base_url": fake.base_url,
                "api_key_env": "ANTHROPIC_API_KEY",
            },
            "demo": {"type": "mock"},
        },
        "models": {
            "gpt-test": {"provider": "openai", "upstream_model": "gpt-up"},
            "gpt-backup": {"provider": "openai", "upstream_model": "gpt-backup-up"},
            "claude-test": {"provider": "anthropic", "upstream_model": "claude-up"},
            "claude-backup": {"provider": "anthropic", "upstream_model": "claude-backup-up"},
            "mock-model": {"provider": "demo", "upstream_model": "mock-1"},
        },
        "auth": {"api_keys_file": "keys.yaml"},
        # Tests share one gateway and script failures on purpose: a circuit opened by one
        # test must not fail the next (tests/fallback/test_breaker.py has its own gateways).
        "breaker": {"enabled": False},
    }


POLICIES: dict[str, dict[str, object]] = {
    "chat_app": {
        "workflow": "chat_app",
        "owner": "tests@example.com",
        "access": {
            "roles": ["analyst"],
            "models": ["gpt-test", "claude-test", "mock-model"],
            "max_output_tokens": 256,
        },
        "upstream": {
            "timeout_s": 5,
            "connect_timeout_s": 1,
            "read_timeout_s": 0.5,
            "retries": 2,
        },
        "fallback": {"models": ["gpt-backup", "claude-backup"]},
    },
    "strict": {
        "workflow": "strict",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["gpt-test", "claude-test"]},
        "upstream": {"timeout_s": 1, "retries": 1},
    },
    "ops_only": {
        "workflow": "ops_only",
        "owner": "tests@example.com",
        "access": {"roles": ["ops"], "models": ["gpt-test"]},
    },
}


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` (``make test``): by file, and the tests that must not run beside
    each other in one group, first (tests/support/scheduling.py)."""
    return files_and_groups(config, log) if config.getvalue("dist") == "loadgroup" else None


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="session")
def gateway(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("gateway")
    config = write_yaml(root / "gateway.yaml", gateway_config(upstream))
    for name, policy in POLICIES.items():
        write_yaml(root / "policies" / f"{name}.yaml", policy)
    analyst = new_key(root / "keys.yaml", "alice", ["analyst"])
    ops = new_key(root / "keys.yaml", "olga", ["ops"])
    server = GatewayServer(config, UPSTREAM_KEYS).start()
    try:
        yield Gateway(server.url, analyst, ops, root)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_upstream(upstream: FakeUpstream) -> None:
    upstream.reset()
