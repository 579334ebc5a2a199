"""A gateway folder for the policy commands: gateway.yaml with a small catalogue, policies."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.server import write_yaml

REPO = Path(__file__).resolve().parents[2]

# openai-type providers speak only the OpenAI API, anthropic-type only Anthropic's; the mock
# speaks both. No request is ever sent by these commands.
CONFIG: dict[str, Any] = {
    "providers": {
        "openai": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "K1"},
        "anthropic": {"type": "anthropic", "base_url": "http://127.0.0.1:9", "api_key_env": "K2"},
        "demo": {"type": "mock"},
    },
    "models": {
        "gpt-test": {"provider": "openai", "upstream_model": "gpt-up",
                     "usd_per_mtok_in": 1.0, "usd_per_mtok_out": 2.0},
        "claude-test": {"provider": "anthropic", "upstream_model": "claude-up",
                        "usd_per_mtok_in": 1.0, "usd_per_mtok_out": 2.0},
        "mock-model": {"provider": "demo", "upstream_model": "mock-1"},
    },
    "auth": {"api_keys_file": "keys.yaml", "roles": ["agent", "ops"]},
}  # fmt: skip

GOOD = """\
workflow: triage
owner: ops@example.com
access:
  roles: [agent]
  models: [gpt-test]
"""


def make_root(root: Path, policies: dict[str, str], **config: Any) -> Path:
    """``root/gateway.yaml`` (CONFIG with ``config`` merged at the top level) and policies."""
    write_yaml(root / "gateway.yaml", {**CONFIG, **config})
    folder = root / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in policies.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return root / "gateway.yaml"


def run_cli(
    *args: str,
    cwd: Path = REPO,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """The real ``gateway`` command in a child process (``env``: added to this one's)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        env={**os.environ, **env} if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
