"""Start-up imports no HTTP client library the default deployment does not use: aiohttp
(about a third of a second of CPU) loads only when a JWKS or a webhook is fetched or sent,
which the JWKS and webhook tests exercise (docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SERVE = """
import json, sys
from pathlib import Path
import gateway.app
from gateway.config import load_config
gateway.app.create_app(load_config(Path({config!r})))
print(json.dumps(sorted(m for m in ("aiohttp",) if m in sys.modules)))
"""


def test_default_deployment_starts_without_aiohttp(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GATEWAY_AUDIT_DB": str(tmp_path / "audit.db"),
        "GATEWAY_AUDIT_SPOOL": str(tmp_path / "spool"),
    }
    done = subprocess.run(
        [sys.executable, "-c", _SERVE.format(config=str(ROOT / "gateway.yaml"))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []
