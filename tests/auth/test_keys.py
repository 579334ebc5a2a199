"""Gateway keys: printed once, stored hashed, picked up without a restart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.auth.credentials import credential
from gateway.auth.keys import KeyStore, create_key
from gateway.errors import GatewayError


def test_key_is_stored_only_as_a_hash(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    key, record = create_key(keys, "alice", ["sales-agent"], team="emea")
    stored = keys.read_text()
    assert key not in stored
    assert record.hash in stored and "alice" in stored
    principal = KeyStore(keys).resolve(key)
    assert (principal.subject, principal.roles, principal.team) == (
        "alice",
        frozenset({"sales-agent"}),
        "emea",
    )
    assert principal.key_id == record.id
    with pytest.raises(GatewayError) as caught:
        KeyStore(keys).resolve(key + "x")
    assert caught.value.reason.code == "auth.invalid_key"


def test_new_keys_are_seen_without_restart(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    store = KeyStore(keys, recheck_s=0.0)
    first, _ = create_key(keys, "a", ["r"])
    assert store.resolve(first).subject == "a"
    second, _ = create_key(keys, "b", ["r"])
    assert store.resolve(second).subject == "b"
    keys.write_text("keys: [{broken")  # a half-written file keeps the last good keys
    assert store.resolve(first).subject == "a"


def test_credential_locations() -> None:
    assert credential({"authorization": "Bearer abc"}) == "abc"
    assert credential({"authorization": "bearer  abc "}) == "abc"
    assert credential({"x-api-key": "k1"}) == "k1"
    assert credential({"authorization": "Basic abc"}) is None
    assert credential({"authorization": "Bearer "}) is None
    assert credential({}) is None


def test_cli_prints_the_key_once(tmp_path: Path) -> None:
    keys = tmp_path / "k.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "keys",
            "create",
            "--subject",
            "bob",
            "--roles",
            "ops, engineer",
            "--file",
            str(keys),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = result.stdout.strip()
    assert key.startswith("gwk_")
    principal = KeyStore(keys).resolve(key)
    assert principal.roles == frozenset({"ops", "engineer"})
