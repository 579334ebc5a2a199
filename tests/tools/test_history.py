"""Policy history: every version a real gateway loads (at start, on each reload) is kept once
per hash with its text, on SQLite and PostgreSQL; ``gateway policy history|diff|show``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx2
import pytest
import yaml

from gateway.audit.history import EvalRun, HistoryError, PolicyChange, PolicyVersion
from gateway.audit.migrate import migrate
from tests.audit.conftest import PG_URL
from tests.conftest import UPSTREAM_KEYS
from tests.fakes.upstream import FakeUpstream
from tests.support.server import GatewayServer
from tests.tools.lifecycle import Folder, chat_policy, keys, make_folder

pytestmark = pytest.mark.usefixtures("upstream")


def test_the_store_keeps_each_version_once(folder: Folder) -> None:
    history = folder.history()
    v1 = PolicyVersion("w", "sha256:aaaa000000000001", "workflow: w\n", "w.yaml", "o@x", 10.0)
    v2 = PolicyVersion("w", "sha256:bbbb000000000002", "workflow: w # 2\n", "w.yaml", "o@x", 20.0)
    again = PolicyVersion("w", v1.version, "other text", "w.candidate.yaml", "o@x", 30.0)

    async def go() -> None:
        assert await history.record_versions([v1, v2]) == 2
        assert await history.record_versions([again, v2]) == 0  # the first text stays
        assert await history.versions("w") == [v1, v2]
        assert await history.versions("other") == []
        change = PolicyChange("w", 40.0, "promote", v1.version, v2.version, "ann", "why", {"a": 1})
        await history.record_change(change)
        assert await history.changes("w") == [change]
        runs = [
            EvalRun("w", at, v1.version, False, "", True, "d1", "pass_rate", value, 0.9, 9, 1,
                    ("case b",))
            for at, value in ((50.0, 0.9), (60.0, 1.0))
        ]  # fmt: skip
        for run in runs:
            await history.record_eval(run)
        assert await history.eval_runs("w") == runs[::-1]

    asyncio.run(go())


def _wait_for(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def test_a_gateway_records_what_it_loads(
    folder: Folder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, admin = keys(folder)
    first_text = (folder.policies / "chat_app.yaml").read_text()
    v1 = folder.version()
    server = GatewayServer(folder.config_path, {**UPSTREAM_KEYS, **folder.env}).start()
    try:
        history = folder.history()
        _wait_for(lambda: asyncio.run(history.versions("chat_app")))
        [loaded] = asyncio.run(history.versions("chat_app"))
        assert (loaded.version, loaded.text, loaded.source) == (v1, first_text, "chat_app.yaml")
        assert loaded.owner == "tests@example.com"

        folder.write("chat_app.yaml", chat_policy("redact"))
        folder.write("chat_app.candidate.yaml", chat_policy("block"))
        answer = httpx2.post(
            f"{server.url}/admin/policies/reload",
            headers={"authorization": f"Bearer {admin}"},
            timeout=10,
        )
        assert answer.status_code == 200
        v2 = folder.version()
        stored = {v.version: v for v in asyncio.run(history.versions("chat_app"))}
        assert set(stored) == {v1, v2, answer.json()["policy_set"]["candidates"]["chat_app"]}
        assert "redact" in stored[v2].text
        candidate = next(v for v in stored.values() if v.source == "chat_app.candidate.yaml")
        assert "block" in candidate.text
        time.sleep(1.5)  # the watcher polls the same files: nothing new
        assert len(asyncio.run(history.versions("chat_app"))) == 3
    finally:
        server.stop()

    # A restart loads the same versions: still one row each.
    server = GatewayServer(folder.config_path, {**UPSTREAM_KEYS, **folder.env}).start()
    try:
        time.sleep(0.5)
        assert len(asyncio.run(folder.history().versions("chat_app"))) == 3
    finally:
        server.stop()

    capsys.readouterr()
    assert folder.cli("policy", "history", "chat_app") == 0
    out = capsys.readouterr().out
    assert v1 in out and v2 in out and "chat_app.candidate.yaml" in out

    # Prefixes, with or without sha256:.
    assert folder.cli("policy", "diff", "chat_app", v1[:14], v2.removeprefix("sha256:")[:8]) == 0
    diff = capsys.readouterr().out
    assert f"--- chat_app {v1} (chat_app.yaml)" in diff
    assert f"+++ chat_app {v2} (chat_app.yaml)" in diff
    assert "-    EMAIL_ADDRESS: mask" in diff and "+    EMAIL_ADDRESS: redact" in diff

    assert folder.cli("policy", "show", "chat_app", v1) == 0
    shown = capsys.readouterr().out
    assert shown.split("\n", 1)[1] == first_text
    assert yaml.safe_load(shown) == chat_policy()  # the header line is a YAML comment

    assert folder.cli("policy", "show", "chat_app", "sha256:ffff") == 1
    assert "no version sha256:ffff" in capsys.readouterr().err
    assert folder.cli("policy", "show", "chat_app", "sha256:") == 1
    assert "ambiguous" in capsys.readouterr().err
    assert folder.cli("policy", "history", "nobody") == 1


def test_an_older_postgresql_schema_needs_gateway_migrate(
    tmp_path: Path, upstream: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    made = make_folder(tmp_path, upstream, "postgres")
    folder = next(made)
    schema = folder.config().audit.pg_schema
    v = PolicyVersion("w", "sha256:aaaa000000000001", "workflow: w\n", "w.yaml", "o@x", 10.0)

    async def downgrade() -> None:
        """The schema as the release before the history made it: version 3."""
        await migrate_schema(folder)
        db = await asyncpg.connect(PG_URL)
        try:
            for table in ("policy_versions", "policy_changes", "eval_runs"):
                await db.execute(f"DROP TABLE {schema}.{table}")
            await db.execute(f"DELETE FROM {schema}.schema_migrations WHERE version > 3")
        finally:
            await db.close()

    try:
        asyncio.run(downgrade())
        with pytest.raises(HistoryError, match="run `gateway migrate`"):
            asyncio.run(folder.history().record_versions([v]))
        assert folder.cli("migrate") == 0
        out = capsys.readouterr().out
        assert "applied 0004_policy_history" in out and "applied 0005_eval_runs" in out
        assert asyncio.run(folder.history().record_versions([v])) == 1
    finally:
        made.close()  # drops the schema


async def migrate_schema(folder: Folder) -> None:
    db = await asyncpg.connect(PG_URL)
    try:
        await migrate(db, folder.config().audit.pg_schema)
    finally:
        await db.close()
