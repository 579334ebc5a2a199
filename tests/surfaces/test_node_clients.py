"""The Node clients (tests/node: openai, @anthropic-ai/sdk, the Vercel AI SDK with
@ai-sdk/openai's Responses default and ``.chat``, @ai-sdk/anthropic), pinned in its lockfile,
run unchanged against the gateway and its mock. ``.ci/run`` installs node and runs ``npm ci``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Gateway

NODE_DIR = Path(__file__).parents[1] / "node"


def test_node_clients(gateway: Gateway) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (.ci/run installs it with apt)")
    if not (NODE_DIR / "node_modules").is_dir():
        pytest.skip("the Node clients are not installed: run `npm ci` in tests/node (.ci/run does)")
    env = {
        **os.environ,
        "GATEWAY_URL": gateway.url,
        "GATEWAY_KEY": gateway.analyst_key,
        "GATEWAY_WORKFLOW": "wire",
    }
    done = subprocess.run(
        [node, "clients.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "node clients: ok" in done.stdout
