"""A gateway of its own for the observability tests (counts must be exact), answered by the
in-process mock provider, and a reader for the Prometheus exposition text."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import TLS
from tests.support.server import GatewayServer, new_key, write_yaml

POLICIES: dict[str, dict[str, Any]] = {
    "triage": {
        "workflow": "triage",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["mock-model", "mock-other"]},
        "data": {"entities": {"EMAIL_ADDRESS": "mask"}, "deny_terms": ["project zeus"]},
    },
    "notes": {
        "workflow": "notes",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["mock-model"]},
    },
}


def observed_config(**observe: Any) -> dict[str, Any]:
    return {
        "listen": {"host": "127.0.0.1", "port": 0},
        "policies_dir": "policies",
        "providers": {"demo": {"type": "mock"}},
        "models": {
            "mock-model": {
                "provider": "demo",
                "upstream_model": "mock-1",
                "usd_per_mtok_in": 1.0,
                "usd_per_mtok_out": 2.0,
            },
            "mock-other": {"provider": "demo", "upstream_model": "mock-2"},
        },
        "auth": {"api_keys_file": "keys.yaml"},
        "observe": observe,
    }


@dataclass
class Observed:
    url: str
    key: str  # roles: analyst
    admin_key: str
    root: Path

    def chat(
        self, workflow: str, text: str, model: str = "mock-model", **extra: Any
    ) -> httpx.Response:
        return httpx.post(
            f"{self.url}/w/{workflow}/v1/chat/completions",
            headers={"authorization": f"Bearer {self.key}"},
            json={"model": model, "messages": [{"role": "user", "content": text}], **extra},
            timeout=10,
            verify=TLS,
        )

    def scrape(self, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of ``/metrics``: (name, sorted labels) -> value."""
        response = httpx.get(f"{self.url}/metrics", headers=headers, timeout=10, verify=TLS)
        assert response.status_code == 200, response.text
        return samples(response.text)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(
    scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    return sum(
        v
        for (n, ls), v in scraped.items()
        if n == name and all(dict(ls).get(k) == want for k, want in labels.items())
    )


def start_observed(
    root: Path, config: dict[str, Any], env: dict[str, str] | None = None
) -> tuple[GatewayServer, Observed]:
    path = write_yaml(root / "gateway.yaml", config)
    for name, policy in POLICIES.items():
        write_yaml(root / "policies" / f"{name}.yaml", policy)
    key = new_key(root / "keys.yaml", "alice", ["analyst"])
    admin = new_key(root / "keys.yaml", "root", ["admin"])
    server = GatewayServer(path, env or {}).start()
    return server, Observed(server.url, key, admin, root)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    server, gw = start_observed(tmp_path_factory.mktemp("observed"), observed_config())
    try:
        yield gw
    finally:
        server.stop()
