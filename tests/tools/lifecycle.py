"""A gateway folder for the lifecycle commands (history, eval, promote, rollback): gateway.yaml
in front of the fake upstream, the audit trail in SQLite or the real PostgreSQL (a schema of
its own), one workflow with its policy test cases, and records written straight to the
store (as the gateway writes them) for the replay and canary gates."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.audit import AuditRecord, open_store
from gateway.audit.history import HistoryStore, open_history
from gateway.cli import main
from gateway.config import GatewayConfig, load_config
from gateway.policy.loader import load_policies
from tests.audit.conftest import PG_URL, drop_schema, record
from tests.conftest import UPSTREAM_KEYS, gateway_config
from tests.fakes.upstream import FakeUpstream
from tests.support.server import new_key, write_yaml

EMAIL = "Write to jane.doe@example.com about the order."


def chat_policy(action: str = "mask", **extra: Any) -> dict[str, Any]:
    return {
        "workflow": "chat_app",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["gpt-test", "claude-test"]},
        "data": {"entities": {"EMAIL_ADDRESS": action}},
        **extra,
    }


# The policy test: a plain question passes under every candidate the tests write, unless
# one blocks plain text on purpose.
CASES = {
    "workflow": "chat_app",
    "cases": [
        {
            "name": "a plain question is answered",
            "principal": {"subject": "alice", "roles": ["analyst"]},
            "request": {
                "model": "gpt-test",
                "messages": [{"role": "user", "content": "what is our refund policy"}],
            },
            "expect": {"decision": "allow", "status": 200},
        }
    ],
}


@dataclass
class Folder:
    root: Path
    config_path: Path
    env: dict[str, str]

    @property
    def policies(self) -> Path:
        return self.root / "policies"

    def config(self) -> GatewayConfig:
        return load_config(self.config_path, self.env)

    def history(self) -> HistoryStore:
        return open_history(self.config())

    def write(self, name: str, data: dict[str, Any] | str) -> Path:
        """``name`` (``chat_app.yaml``, ``chat_app.candidate.yaml``, ``evals/x.jsonl``) in
        the policies folder, written by renaming over it."""
        path = self.policies / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        tmp.replace(path)
        return path

    def version(self, workflow: str = "chat_app") -> str:
        """The live version of the folder as the gateway computes it."""
        return load_policies(self.policies, self.config().models)[workflow].version

    def cli(self, *args: str) -> int:
        old = dict(os.environ)
        os.environ.update(self.env)
        try:
            return main(["--config", str(self.config_path), *args])
        except SystemExit as exc:
            return int(exc.code or 0)
        finally:
            os.environ.clear()
            os.environ.update(old)

    def store_records(self, records: Sequence[AuditRecord]) -> None:
        async def go() -> None:
            store = open_store(self.config(), self.env)
            try:
                await store.write(records)
            finally:
                await store.close()

        asyncio.run(go())


def traffic(version: str, n: int, start: int, **changes: object) -> list[AuditRecord]:
    """``n`` chat records of chat_app decided under ``version``, made now."""
    now = time.time()
    return [
        record(
            start + i,
            time=now - 60 + i * 0.01,
            policy_version=version,
            request_id=f"req-{uuid.uuid4().hex[:12]}",
            **changes,
        )
        for i in range(n)
    ]


def make_folder(root: Path, upstream: FakeUpstream, store: str) -> Iterator[Folder]:
    config: dict[str, Any] = {**gateway_config(upstream), "audit": {"purge_interval_s": 0}}
    schema = f"life_{uuid.uuid4().hex[:12]}"
    if store == "postgres":
        config["stores"] = {"audit_url": PG_URL}
        config["audit"] = {**config["audit"], "pg_schema": schema}
        # its own review store too (`migrate` brings both up; the shared one may be newer)
        config["review"] = {**config.get("review", {}), "pg_schema": f"{schema}_review"}
    path = write_yaml(root / "gateway.yaml", config)
    write_yaml(root / "policies" / "chat_app.yaml", chat_policy())
    write_yaml(root / "policies" / "tests" / "chat_app.yaml", CASES)
    env = {**UPSTREAM_KEYS, "GATEWAY_AUDIT_KEY": "k" * 32}
    try:
        yield Folder(root, path, env)
    finally:
        if store == "postgres":
            asyncio.run(drop_schema(schema))
            asyncio.run(drop_schema(f"{schema}_review"))


def keys(folder: Folder) -> tuple[str, str]:
    """(analyst key, admin key) in the folder's keys file."""
    keys_file = folder.root / "keys.yaml"
    return new_key(keys_file, "alice", ["analyst"]), new_key(keys_file, "root", ["admin"])
