"""Gateway keys: printed once, stored hashed, picked up without a restart."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from gateway.auth.credentials import credential
from gateway.auth.keys import KeyStore, create_key


def test_key_is_stored_only_as_a_hash(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    key, record = create_key(keys, "alice", ["sales-agent"], team="emea")
    stored = keys.read_text()
    assert key not in stored
    assert record.hash in stored and "alice" in stored
    principal = KeyStore(keys).principal(key)
    assert principal is not None
    assert (principal.subject, principal.roles, principal.team) == (
        "alice",
        frozenset({"sales-agent"}),
        "emea",
    )
    assert principal.key_id == record.id
    assert KeyStore(keys).principal(key + "x") is None


def test_new_keys_are_seen_without_restart(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    store = KeyStore(keys, recheck_s=0.0)
    first, _ = create_key(keys, "a", ["r"])
    assert store.principal(first) is not None
    time.sleep(0.01)
    second, _ = create_key(keys, "b", ["r"])
    assert store.principal(second) is not None
    keys.write_text("keys: [{broken")  # a half-written file keeps the last good keys
    assert store.principal(first) is not None


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
    principal = KeyStore(keys).principal(key)
    assert principal is not None and principal.roles == frozenset({"ops", "engineer"})
