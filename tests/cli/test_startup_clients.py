"""Start-up imports no client library the default deployment does not use (docs/performance.md):
aiohttp (about a third of a second of CPU) loads only when a JWKS or a webhook is fetched or
sent, redis-py with ``stores.redis_url``, asyncpg with PostgreSQL, pyjwt and cryptography
with ``auth.jwt``; the tests of each of those paths exercise the import where it moved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNUSED = ("aiohttp", "redis", "asyncpg", "jwt", "cryptography")

_SERVE = """
import json, sys
from pathlib import Path
import gateway.cli
from gateway.config import load_config
gateway.app.create_app(load_config(Path({config!r})))
print(json.dumps(sorted(m for m in {unused!r} if m in sys.modules)))
"""


def test_default_deployment_starts_without_unused_clients(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GATEWAY_AUDIT_DB": str(tmp_path / "audit.db"),
        "GATEWAY_AUDIT_SPOOL": str(tmp_path / "spool"),
    }
    done = subprocess.run(
        [sys.executable, "-c", _SERVE.format(config=str(ROOT / "gateway.yaml"), unused=UNUSED)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []
