"""Gateway keys expire and can be revoked; a running gateway honours both within a second."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest

from gateway.auth.keys import KeyStore, create_key, read_keys
from gateway.errors import GatewayError
from tests.conftest import Gateway


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "keys", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _status(gateway: Gateway, key: str) -> tuple[int, str | None]:
    response = httpx2.get(
        f"{gateway.url}/w/chat_app/v1/models", headers={"authorization": f"Bearer {key}"}
    )
    code = response.json()["error"]["code"] if response.status_code != 200 else None
    return response.status_code, code


def test_revocation_is_honoured_within_a_second(gateway: Gateway) -> None:
    keys = gateway.config_dir / "keys.yaml"
    key, record = create_key(keys, "temp", ["analyst"])
    deadline = time.monotonic() + 3
    while _status(gateway, key)[0] != 200:
        assert time.monotonic() < deadline, "new key not picked up"
        time.sleep(0.05)
    result = _cli("revoke", record.id, "--file", str(keys))
    assert result.returncode == 0, result.stderr
    revoked_at = time.monotonic()
    while (status := _status(gateway, key)) == (200, None):
        time.sleep(0.05)
    assert time.monotonic() - revoked_at < 1.5  # 1 s re-check, plus a request on a busy machine
    assert status == (401, "auth.revoked")
    assert _status(gateway, gateway.analyst_key)[0] == 200  # the others are untouched


def test_expired_key_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    past = datetime.now(UTC) - timedelta(seconds=1)
    key, _ = create_key(keys, "old", ["r"], expires_at=past)
    fresh, _ = create_key(keys, "new", ["r"], expires_at=datetime.now(UTC) + timedelta(days=1))
    store = KeyStore(keys)
    with pytest.raises(GatewayError) as caught:
        store.resolve(key)
    assert caught.value.reason.code == "auth.expired"
    assert caught.value.headers["www-authenticate"].startswith("Bearer ")
    assert store.resolve(fresh).expires_at is not None


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    keys = str(tmp_path / "keys.yaml")
    created = _cli(
        "create", "--subject", "ci-bot", "--roles", "ops", "--expires-in", "30d", "--file", keys
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    (record,) = read_keys(Path(keys))
    assert record.expires_at is not None
    assert abs(record.expires_at - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    other = _cli("create", "--subject", "dev", "--roles", "ops", "--file", keys)
    assert other.returncode == 0

    assert _cli("revoke", record.id, "--file", keys).returncode == 0
    listing = _cli("list", "--file", keys)
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["ID", "SUBJECT", "ROLES", "TEAM", "CREATED", "EXPIRES", "STATUS"]
    rows = {line.split()[1]: line.split() for line in lines[1:]}
    assert rows["ci-bot"][0] == record.id and rows["ci-bot"][-1] == "revoked"
    assert rows["dev"][-2:] == ["never", "active"]
    assert key not in listing.stdout and "sha256:" not in listing.stdout

    missing = _cli("revoke", "ffffffff", "--file", keys)
    assert missing.returncode == 1 and "no key with id 'ffffffff'" in missing.stderr
    bad = _cli("create", "--subject", "x", "--roles", "r", "--expires-in", "soon", "--file", keys)
    assert bad.returncode == 2 and "not a duration" in bad.stderr
