"""Gateways for the rollout tests: several instances on one policies folder, sharing a real
Redis (a key prefix of their own) or, without one, the folder's flags file."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis.asyncio as aioredis

from gateway.audit import AuditRecord
from tests.conftest import UPSTREAM_KEYS, gateway_config
from tests.fakes.upstream import FakeUpstream
from tests.support.clients import TLS, openai_client
from tests.support.server import GatewayServer, new_key, write_yaml

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    body: Any

    @property
    def version(self) -> str:
        return self.headers["x-gateway-policy-version"]


@dataclass
class Fleet:
    """``n`` gateways on one root (config, policies, keys, audit file)."""

    root: Path
    env: dict[str, str]
    analyst: str
    admin: str
    prefix: str | None
    servers: list[GatewayServer] = field(default_factory=list)
    clients: dict[str, openai.OpenAI] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "gateway.yaml"

    def url(self, i: int) -> str:
        return self.servers[i].url

    def restart(self, i: int) -> None:
        self.servers[i].stop()
        self.servers[i] = GatewayServer(self.config, self.env).start()  # a new port

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def chat(
        self,
        i: int,
        workflow: str,
        text: str = "hello",
        headers: dict[str, str] | None = None,
        model: str = "mock-model",
    ) -> Answer:
        """One chat completion through the official SDK; refusals come back as answers."""
        base = f"{self.url(i)}/w/{workflow}/v1"
        client = self.clients.get(base)
        if client is None:
            client = self.clients[base] = openai_client(
                base_url=base, api_key=self.analyst, max_retries=0
            )
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": text}], extra_headers=headers
            )
        except openai.APIStatusError as exc:
            return Answer(exc.status_code, exc.response.headers, exc.response.json())
        return Answer(raw.status_code, raw.http_response.headers, raw.parse())

    def admin_get(self, i: int, path: str) -> Any:
        got = httpx.get(f"{self.url(i)}/admin{path}", headers=self._auth(), timeout=10, verify=TLS)
        got.raise_for_status()
        return got.json()

    def admin_post(self, i: int, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(
            f"{self.url(i)}/admin{path}",
            headers=self._auth(),
            json=body or {},
            timeout=10,
            verify=TLS,
        )

    def _auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.admin}"}

    def records(self, endpoint: str) -> list[AuditRecord]:
        with sqlite3.connect(self.root / "audit.db") as db:
            rows = db.execute("SELECT body FROM audit_records").fetchall()
        found = [AuditRecord.from_json(r[0]) for r in rows]
        return [r for r in found if r.endpoint == endpoint]

    def write_policy(self, name: str, policy: dict[str, Any]) -> None:
        write_yaml(self.root / "policies" / name, policy)

    def rollout(self, i: int, workflow: str) -> dict[str, Any]:
        rows = self.admin_get(i, "/rollout")["workflows"]
        return next(r for r in rows if r["workflow"] == workflow)


def start_fleet(
    root: Path,
    upstream: FakeUpstream,
    policies: dict[str, dict[str, Any]],
    *,
    shared: bool = True,
    n: int = 2,
) -> Fleet:
    """``shared``: through Redis (a fresh key prefix), else the policies folder."""
    prefix = f"t{uuid.uuid4().hex[:10]}" if shared else None
    config: dict[str, Any] = {
        **gateway_config(upstream),
        "audit": {"purge_interval_s": 0, "durability": "sync"},
    }
    if prefix is not None:
        config["stores"] = {"redis_url": REDIS_URL, "key_prefix": prefix}
    write_yaml(root / "gateway.yaml", config)
    for name, policy in policies.items():
        write_yaml(root / "policies" / name, policy)
    analyst = new_key(root / "keys.yaml", "alice", ["analyst"])
    admin = new_key(root / "keys.yaml", "root", ["admin"])
    env = {**UPSTREAM_KEYS, "GATEWAY_VAULT_KEY": "v" * 32}
    fleet = Fleet(root, env, analyst, admin, prefix)
    for _ in range(n):
        fleet.servers.append(GatewayServer(fleet.config, env).start())
    return fleet


async def drop_keys(prefix: str) -> None:
    client = aioredis.from_url(REDIS_URL)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture
def fleets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Fleet]]:
    """Start fleets with ``fleets(upstream, policies, shared=...)``; all stopped at the end."""
    started: list[Fleet] = []

    def start(upstream: FakeUpstream, policies: dict[str, dict[str, Any]], **kw: Any) -> Fleet:
        fleet = start_fleet(tmp_path_factory.mktemp("rollout"), upstream, policies, **kw)
        started.append(fleet)
        return fleet

    yield start
    for fleet in started:
        fleet.stop()
        if fleet.prefix is not None:
            asyncio.run(drop_keys(fleet.prefix))


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.02) -> float:
    """Seconds until ``check()`` held; raises AssertionError after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start
