"""``GET /admin/audit`` (admin only, paginated, filtered) and the ``gateway audit`` CLI on
the records real requests left."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from urllib.error import HTTPError

import orjson
import pytest

from tests.audit.conftest import AuditedGateway

MESSAGES = [{"role": "user", "content": "hello"}]


def _get(gw: AuditedGateway, path: str, key: str) -> dict[str, object]:
    request = urllib.request.Request(f"{gw.url}{path}", headers={"authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return orjson.loads(response.read())  # type: ignore[no-any-return]


def _cli(gw: AuditedGateway, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(gw.config_dir / "gateway.yaml"), "audit", *args],
        capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ),
    )  # fmt: skip


@pytest.fixture(scope="module")
def traffic(audited: AuditedGateway) -> list[str]:
    """Three admitted requests and one refused, by request id."""
    ids = []
    for _ in range(3):
        raw = audited.openai().chat.completions.with_raw_response.create(
            model="gpt-test", messages=MESSAGES
        )  # type: ignore[arg-type]
        ids.append(raw.headers["x-request-id"])
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the SDK's 403 class
        audited.openai(key=audited.ops_key).chat.completions.create(
            model="gpt-test", messages=MESSAGES
        )  # type: ignore[arg-type]
    ids.append(caught.value.response.headers["x-request-id"])  # type: ignore[attr-defined]
    return ids


def test_admin_audit_needs_the_admin_role(audited: AuditedGateway) -> None:
    with pytest.raises(HTTPError) as caught:
        _get(audited, "/admin/audit", audited.analyst_key)
    assert caught.value.code == 403


def test_admin_audit_filters_and_pages(audited: AuditedGateway, traffic: list[str]) -> None:
    denied = _get(audited, "/admin/audit?reason=access.role_denied&subject=olga", audited.admin_key)
    assert [r["request_id"] for r in denied["records"]] == [traffic[3]]  # type: ignore[index]
    seen: list[str] = []
    after = None
    while True:
        page = _get(
            audited,
            f"/admin/audit?workflow=chat_app&decision=allow&limit=2{'&after=' + str(after) if after else ''}",
            audited.admin_key,
        )
        seen += [r["request_id"] for r in page["records"]]  # type: ignore[index]
        if (after := page["next"]) is None:
            break
    assert set(traffic[:3]) <= set(seen) and traffic[3] not in seen
    with pytest.raises(HTTPError) as caught:
        _get(audited, "/admin/audit?since=yesterday", audited.admin_key)
    assert caught.value.code == 400


def test_cli_list_show_export_verify(audited: AuditedGateway, traffic: list[str]) -> None:
    listed = _cli(audited, "list", "--subject", "olga", "--json")
    assert listed.returncode == 0, listed.stderr
    assert traffic[3] in [orjson.loads(line)["request_id"] for line in listed.stdout.splitlines()]
    table = _cli(audited, "list", "--decision", "deny", "--reason", "access.role_denied")
    assert table.returncode == 0 and "access.role_denied" in table.stdout and "olga" in table.stdout
    shown = _cli(audited, "show", traffic[0])
    assert shown.returncode == 0 and orjson.loads(shown.stdout)["subject"] == "alice"
    exported = _cli(audited, "export", "--format", "jsonl", "--workflow", "chat_app")
    ids = [orjson.loads(line)["request_id"] for line in exported.stdout.splitlines()]
    assert set(traffic) <= set(ids)
    verified = _cli(audited, "verify")
    assert verified.returncode == 0 and verified.stdout.startswith("ok: "), verified.stdout
    dry = _cli(audited, "purge", "--dry-run")
    assert dry.returncode == 0 and "would purge nothing" in dry.stdout
