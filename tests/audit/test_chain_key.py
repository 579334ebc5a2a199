"""The chain names the key it was started with (a keyed fingerprint, never the key), so
``gateway audit verify`` under another key, or none, says exactly that instead of calling the
first record edited; and only ``gateway serve`` warns about an unkeyed chain."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.audit import AuditStore
from gateway.audit.chain import Chain
from gateway.audit.sqlite import SqliteSink
from tests.audit.conftest import record
from tests.support.server import write_yaml

KEY_A, KEY_B = "a" * 32, "b" * 32


async def test_the_first_write_records_the_key_fingerprint(store: AuditStore) -> None:
    assert await store.key_fingerprint() is None  # an empty chain names no key yet
    await store.write([record(1), record(2)])
    await store.write([record(3)])
    fingerprint = await store.key_fingerprint()
    assert fingerprint == store.chain.fingerprint()
    assert fingerprint != Chain(b"another key, as long as the first").fingerprint()
    assert fingerprint not in ("k" * 32, "unkeyed")  # the key itself is never stored


def _verify(root: Path, key: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_AUDIT_KEY"}
    if key is not None:
        env["GATEWAY_AUDIT_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(root / "gateway.yaml"), "audit", "verify"],
        capture_output=True, text=True, timeout=60, check=False, env=env, cwd=root,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("written", "read", "why"),
    [
        (KEY_A, KEY_B, "it was written with a different key than the one in GATEWAY_AUDIT_KEY"),
        (KEY_A, None, "it was written with a key, and GATEWAY_AUDIT_KEY is not set"),
        (None, KEY_A, "it was written without a key, and GATEWAY_AUDIT_KEY is set now"),
    ],
)
async def test_verify_under_another_key_says_so(
    tmp_path: Path, written: str | None, read: str | None, why: str
) -> None:
    write_yaml(tmp_path / "gateway.yaml", {"providers": {}, "models": {}})
    sink = SqliteSink(tmp_path / "audit.db", Chain(written.encode() if written else None))
    await sink.write([record(1), record(2)])
    await sink.close()
    wrong = _verify(tmp_path, read)
    assert wrong.returncode == 2
    assert wrong.stdout == f"WRONG KEY: the chain cannot be verified: {why}; nothing was checked\n"
    right = _verify(tmp_path, written)
    assert right.returncode == 0, right.stdout
    assert right.stdout == "ok: 2 record(s) verified\n"
    assert "unkeyed" not in right.stderr  # a read-only command does not warn
