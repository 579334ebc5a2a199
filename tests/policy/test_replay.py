"""``gateway policy replay``: traffic recorded through the real gateway (official SDK), then
re-decided under stricter and looser candidates from the audit trail, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from tests.audit.conftest import PG_URL, AuditedGateway, drop_schema, start_gateway
from tests.conftest import UPSTREAM_KEYS
from tests.fakes.upstream import FakeUpstream
from tests.policy.cliutil import run_cli
from tests.support.server import write_yaml

EMAIL = "mail jane.doe@example.com please"
PHONE = "call me on +44 20 7946 0958"


def policy(name: str, models: list[str], entities: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "workflow": name,
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": models},
        "data": {"entities": entities},
        **extra,
    }


LIVE = {
    "open": {
        "workflow": "open",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["gpt-test"]},
    },
    "leads": policy("leads", ["gpt-test", "gpt-backup"], {"EMAIL_ADDRESS": "mask"}),
    "kept": policy(
        "kept", ["gpt-test"], {"EMAIL_ADDRESS": "mask"}, retention={"content": "masked"}
    ),
}
# leads: stricter (e-mail blocked, one model, phone numbers masked: a rule live never ran).
# kept: phone numbers blocked (its text is retained, so that can be re-decided), and a
# second model allowed (looser).
CANDIDATES = {
    "open.yaml": {
        "workflow": "open",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["gpt-test", "gpt-backup"]},
    },
    "leads.yaml": policy(
        "leads", ["gpt-test"], {"EMAIL_ADDRESS": "block", "PHONE_NUMBER": "mask"}
    ),
    "kept.candidate.yaml": policy(
        "kept", ["gpt-test", "gpt-backup"], {"EMAIL_ADDRESS": "mask", "PHONE_NUMBER": "block"},
        retention={"content": "masked"},
    ),
}  # fmt: skip


@dataclass
class Recorded:
    gw: AuditedGateway
    ids: dict[str, str]  # label -> request id
    candidates: Path
    reports: dict[str, dict[str, Any]] | None = None  # the full replay, run once

    def full(self) -> dict[str, dict[str, Any]]:
        if self.reports is None:
            self.reports = replay_json(self, "--since", "1h")
        return self.reports


def send(gw: AuditedGateway, workflow: str, text: str, model: str = "gpt-test") -> str:
    client = gw.openai(workflow).chat.completions
    try:
        raw = client.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": text}]
        )
    except openai.APIStatusError as exc:
        return exc.response.headers["x-request-id"]
    return raw.headers["x-request-id"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def recorded(
    request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Recorded]:
    root = tmp_path_factory.mktemp("replay")
    audit: dict[str, object] = {"durability": "sync"}
    stores = None
    schema = None
    if request.param == "postgres":
        schema = f"policylive_{uuid.uuid4().hex[:10]}"
        audit["pg_schema"] = schema
        stores = {"audit_url": PG_URL}
    gw, server = start_gateway(root, upstream, audit, stores, policies=LIVE)
    try:
        ids = {
            "leads_plain": send(gw, "leads", "hello"),
            "leads_email": send(gw, "leads", EMAIL),
            "leads_backup": send(gw, "leads", "hello", "gpt-backup"),
            "leads_phone": send(gw, "leads", PHONE),
            "kept_plain": send(gw, "kept", "hello"),
            "kept_phone": send(gw, "kept", PHONE),
            "kept_email": send(gw, "kept", EMAIL),
            "kept_backup": send(gw, "kept", "hello", "gpt-backup"),
            "open_plain": send(gw, "open", "hello"),
            "open_backup": send(gw, "open", "hello", "gpt-backup"),
        }
        candidates = root / "candidates"
        for name, data in CANDIDATES.items():
            write_yaml(candidates / name, data)
        yield Recorded(gw, ids, candidates)
    finally:
        server.stop()
        if schema is not None:
            asyncio.run(drop_schema(schema))


def gateway_cli(rec: Recorded, *args: str) -> subprocess.CompletedProcess[str]:
    config = str(rec.gw.config_dir / "gateway.yaml")
    return run_cli("--config", config, "policy", "replay", *args, env=UPSTREAM_KEYS, timeout=60)


def replay_json(rec: Recorded, *args: str) -> dict[str, dict[str, Any]]:
    done = gateway_cli(rec, "--candidate", str(rec.candidates), "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return {w["workflow"]: w for w in orjson.loads(done.stdout)["workflows"]}


def changed(report: dict[str, Any], change: str) -> set[str]:
    return {c["request_id"] for c in report["changes"] if c["change"] == change}


def test_stricter_candidate_blocks_exactly_these(recorded: Recorded) -> None:
    ids = recorded.ids
    leads = recorded.full()["leads"]
    assert leads["records"] == 4
    assert changed(leads, "newly_blocked") == {ids["leads_email"], ids["leads_backup"]}
    reasons = {c["request_id"]: c["reasons"] for c in leads["changes"]}
    assert reasons[ids["leads_email"]] == ["boundary.blocked_entity"]
    assert reasons[ids["leads_backup"]] == ["access.model_denied"]
    # Live never looked for phone numbers and kept no text: not guessed.
    assert changed(leads, "undecidable") == {ids["leads_plain"], ids["leads_phone"]}
    detail = {c["request_id"]: c["detail"] for c in leads["changes"]}
    assert "PHONE_NUMBER: not looked for by the live policy" in detail[ids["leads_plain"]]
    assert "no request text retained" in detail[ids["leads_plain"]]


def test_retained_text_lets_a_new_entity_rule_be_decided(recorded: Recorded) -> None:
    ids = recorded.ids
    kept = recorded.full()["kept"]
    assert kept["records"] == 4
    assert changed(kept, "newly_blocked") == {ids["kept_phone"]}
    assert changed(kept, "newly_allowed") == set()
    # Live refused it for its model before its text was inspected, and refused requests keep
    # no text: whether the candidate would block a phone number in it is unknown.
    assert changed(kept, "undecidable") == {ids["kept_backup"]}
    assert kept["counts"]["same"] == 2  # plain and e-mail (masked either way)


def test_looser_candidate_allows_what_live_refused(recorded: Recorded) -> None:
    ids = recorded.ids
    report = recorded.full()["open"]
    assert report["records"] == 2
    assert changed(report, "newly_allowed") == {ids["open_backup"]}
    assert report["counts"]["same"] == 1
    (change,) = report["changes"]
    assert (change["live"], change["candidate"]) == ("deny", "allow")
    assert change["detail"] == "live: access.model_denied"


def test_filters_and_text_output(recorded: Recorded) -> None:
    only = replay_json(recorded, "--workflow", "kept", "--since", "2030-01-01T00:00:00Z")
    assert set(only) == {"kept"} and only["kept"]["records"] == 0
    done = gateway_cli(recorded, "--candidate", str(recorded.candidates))
    assert done.returncode == 0, done.stderr
    assert "leads  candidate sha256:" in done.stdout
    assert (
        "newly blocked 2, newly allowed 0, action changes 0, undecidable 2, same 0" in done.stdout
    )
    assert "newly_blocked" in done.stdout and recorded.ids["leads_email"] in done.stdout


def test_broken_candidate_is_refused_at_its_line(recorded: Recorded, tmp_path: Path) -> None:
    (tmp_path / "leads.yaml").write_text(
        "workflow: leads\nowner: t@example.com\naccess:\n  roles: [analyst]\n  models: [gpt-9]\n"
    )
    done = gateway_cli(recorded, "--candidate", str(tmp_path))
    assert done.returncode == 1
    assert "leads.yaml:5: access.models: unknown model 'gpt-9'" in done.stderr
