"""The gateway of tests/conftest.py, plus what the new endpoints need: embedding models and
workflows that mask, allow provider storage (it is forbidden by default), or refuse to embed a masked text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import POLICIES, UPSTREAM_KEYS, Gateway, gateway_config
from tests.fakes.upstream import FakeUpstream
from tests.support.server import GatewayServer, new_key, write_yaml

MODELS = {
    "mock-embed": {
        "provider": "demo",
        "upstream_model": "mock-embed-1",
        "endpoints": ["embeddings"],
        "usd_per_mtok_in": 0.02,
    },
    "embed-test": {"provider": "openai", "upstream_model": "embed-up", "endpoints": ["embeddings"]},
    # Models that serve only the Responses API: a chat request reaches them translated.
    "resp-test": {"provider": "openai", "upstream_model": "resp-up", "endpoints": ["responses"]},
    "mock-resp": {"provider": "demo", "upstream_model": "mock-1", "endpoints": ["responses"]},
}
WIRE_POLICIES: dict[str, dict[str, object]] = {
    "wire": {
        "workflow": "wire",
        "owner": "tests@example.com",
        "access": {
            "roles": ["analyst"],
            "models": [
                "mock-model",
                "mock-embed",
                "gpt-test",
                "claude-test",
                "embed-test",
                "resp-test",
                "mock-resp",
            ],
            "max_output_tokens": 1024,
            "on_exceed": "clamp",
        },
        "data": {"entities": {"EMAIL_ADDRESS": "mask", "CREDIT_CARD": "block"}},
        "retention": {"upstream_store": False},
    },
    "wire_strict": {
        "workflow": "wire_strict",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["mock-model", "mock-embed", "gpt-test"]},
        "data": {"entities": {"EMAIL_ADDRESS": "mask"}},
        "embeddings": {"on_pii": "block"},
        "retention": {"upstream_store": True},
    },
    # Placeholders keyed per value: the same in every request of a conversation.
    "wire_keyed": {
        "workflow": "wire_keyed",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["gpt-test", "claude-test"]},
        "data": {"entities": {"EMAIL_ADDRESS": "mask"}, "placeholders": "keyed"},
    },
    # Provider storage allowed (``store`` as the client sent it, kept responses forwarded).
    "wire_kept": {
        "workflow": "wire_kept",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["gpt-test", "mock-model"]},
        "retention": {"upstream_store": True},
    },
    "wire_fallback": {
        "workflow": "wire_fallback",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["gpt-test", "mock-embed"]},
        "upstream": {"retries": 0},
        "data": {"entities": {"CREDIT_CARD": "block"}},
        "fallback": {
            "models": ["claude-test"],
            "on": ["upstream_error", "blocked"],
            "message": "Sorry, not now.",
        },
    },
}


@pytest.fixture(scope="session")
def gateway(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("wire-gateway")
    config = gateway_config(upstream)
    config["models"] = {**config["models"], **MODELS}  # type: ignore[dict-item]
    path = write_yaml(root / "gateway.yaml", config)
    for name, policy in {**POLICIES, **WIRE_POLICIES}.items():
        write_yaml(root / "policies" / f"{name}.yaml", policy)
    analyst = new_key(root / "keys.yaml", "alice", ["analyst"])
    ops = new_key(root / "keys.yaml", "olga", ["ops"])
    server = GatewayServer(path, UPSTREAM_KEYS).start()
    try:
        yield Gateway(server.url, analyst, ops, root)
    finally:
        server.stop()
