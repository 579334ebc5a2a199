"""deploy/compose: the file is valid Compose (the specification's JSON schema, as shipped by
check-jsonschema), and the topology it describes runs: the tests start it as processes from
the very files it mounts (two gateway replicas, the migrate job, the local Redis and
PostgreSQL standing in for its services) and send requests through both replicas, taking
turns as nginx's round robin would (no load balancer process: nginx is not installed here)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import redis
import yaml

from tests.audit.conftest import PG_URL, drop_schema
from tests.limits.conftest import REDIS_URL
from tests.support.clients import openai_client
from tests.support.process import serve_many
from tests.support.server import new_key

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose"


def _compose() -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    return data


def test_compose_file_follows_the_compose_specification() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(_compose())


def test_every_secret_the_compose_file_needs_is_in_the_env_example() -> None:
    text = (COMPOSE / "compose.yaml").read_text()
    needed = set(re.findall(r"\$\{([A-Z_]+)(?::?[?-][^}]*)?\}", text))
    example = (COMPOSE / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z_]+)=", example, re.M))
    assert needed <= listed, needed - listed
    services = _compose()["services"]
    assert isinstance(services, dict)
    for name, service in services.items():
        if name != "keys":  # a tool, run by hand
            assert "healthcheck" in service or name == "migrate", name
            assert "image" in service, name


def test_every_file_the_compose_file_mounts_is_shipped() -> None:
    """Prometheus gets the shipped alert rules and Grafana the shipped dashboard: a bind
    mount of a missing or empty path would start them with nothing."""
    services = _compose()["services"]
    assert isinstance(services, dict)
    mounted = {}
    for service in services.values():
        for volume in service.get("volumes", []):
            source, target = str(volume).split(":")[:2]
            if source.startswith(".") and source != "./keys":  # made by `keys create`
                path = (COMPOSE / source).resolve()
                assert path.exists(), source
                assert path.is_file() or any(path.iterdir()), f"{source} is empty"
                mounted[target] = path
    rules = mounted["/etc/prometheus/rules/alerts.yaml"]
    assert yaml.safe_load(rules.read_text())["groups"]
    assert list(mounted["/var/lib/grafana/dashboards"].glob("*.json"))


class Topology:
    """The compose services as processes: ``env`` is what compose gives every replica."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.schema = f"compose_{uuid.uuid4().hex[:10]}"
        self.prefix = f"compose-{uuid.uuid4().hex[:10]}"
        service = _compose()["services"]["gateway"]  # type: ignore[index]
        self.replicas: int = service["deploy"]["replicas"]
        self.config = self._mount(service["volumes"])
        self.env = {
            **{k: v for k, v in service["environment"].items() if "${" not in v},
            # The services' names do not resolve here: the same engines on this machine.
            "REDIS_URL": REDIS_URL,
            "AUDIT_DATABASE_URL": PG_URL,
            "GATEWAY_CONFIG": str(self.config),
            "GATEWAY_STATE_DIR": str(root / "var" / "lib" / "gateway"),  # the shared volume
            "GATEWAY_AUDIT_SCHEMA": self.schema,
            "GATEWAY_KEY_PREFIX": self.prefix,
            "GATEWAY_VAULT_KEY": "v" * 40,
            "GATEWAY_AUDIT_KEY": "a" * 40,
        }
        self.command = [str(c).replace("${GATEWAY_WORKERS:-2}", "1") for c in service["command"]]

    def _mount(self, volumes: list[str]) -> Path:
        """Each bind mount of the gateway service at its container path under ``root``."""
        for volume in volumes:
            source, target, *_ = volume.split(":")
            if not source.startswith("."):
                continue  # a named volume: GATEWAY_STATE_DIR below
            host, inside = (COMPOSE / source).resolve(), self.root / target.lstrip("/")
            inside.parent.mkdir(parents=True, exist_ok=True)
            if host.name == "keys":  # made by the operator: this test's own keys
                inside.mkdir()
            elif host.is_dir():
                inside.symlink_to(host, target_is_directory=True)
            else:  # a copy: the gateway reads relative paths from its config's real folder
                shutil.copyfile(host, inside)
        return self.root / "etc" / "gateway" / "gateway.yaml"

    def gateway(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
            timeout=60, env=self.env,
        )  # fmt: skip


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    top = Topology(tmp_path_factory.mktemp("compose"))
    yield top
    asyncio.run(drop_schema(top.schema))
    client = redis.Redis.from_url(REDIS_URL)
    for pattern in (f"{{{top.prefix}:*", f"{top.prefix}:*"):  # limits' hash tag, vault, breaker
        for key in client.scan_iter(pattern):
            client.delete(key)


def test_the_compose_topology_serves_through_both_replicas(topology: Topology) -> None:
    migrate = topology.gateway("migrate")  # the `migrate` service, before the replicas
    assert migrate.returncode == 0, migrate.stderr
    keys_file = topology.config.parent / "keys" / "keys.yaml"
    key = new_key(keys_file, f"user-{uuid.uuid4().hex[:6]}", ["support-agent"])
    logs = [topology.root / f"gateway-{i}.log" for i in range(topology.replicas)]
    procs = serve_many(topology.config, logs, *topology.command[1:], env=topology.env)
    try:
        for i in range(10):
            _, url = procs[i % len(procs)]  # round robin, as the load balancer does
            client = openai_client(base_url=f"{url}/w/support_reply/v1", api_key=key, max_retries=0)
            answer = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"ticket {i}: reply to jane@example.com"}],
            )
            # Tokenized on the way out, restored from the shared vault for this caller.
            assert answer.choices[0].message.content == (
                f"[mock gpt-4o-mini] You said: ticket {i}: reply to jane@example.com"
            )
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:  # uvicorn re-raises SIGTERM once it has shut down cleanly
            assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    verify = topology.gateway("audit", "verify")  # both replicas' records in one chain
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("ok: 10 record(s) verified"), verify.stdout
